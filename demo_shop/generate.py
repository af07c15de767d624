"""The synthetic demo shop: an OLTP database with the signals (and the mess) of a real one.

``generate_shop`` builds a shop from nothing; ``simulate_shop`` (simulate.py) advances it in place.
Both run the same activity engine: *generating* D days is simulating D days from an empty shop.
The engine and the model behind it live in the ``shop`` package (its docstring is the map); this
module is the public entry point and keeps the names other code imports from it.

Ground truth (never in the source) goes to ``truth_dir`` (shop/truth.py), and ``truth_dir/engine/``
holds the engine's own state (shop/state.py), which ``simulate_shop`` continues from.
"""

from __future__ import annotations

import time
from pathlib import Path

from demo_shop.churn import CHURN_WINDOW_DAYS, churn_window
from demo_shop.config import ShopConfig
from demo_shop.customers import LEGACY_SHARE
from demo_shop.engine import Run
from demo_shop.fraud import fraud_logit
from demo_shop.reference_data import CATEGORIES, COUNTRIES, CURRENCIES, Category, Country
from demo_shop.state import ENGINE_DIR, State
from demo_shop.truth import TRUTH_FILES, clear_truth, record_run
from demo_shop.writer import bulk_load
from orchestration.contract import schema
from orchestration.contract.database import SourceDatabase

__all__ = [
    "CATEGORIES",
    "CHURN_WINDOW_DAYS",
    "COUNTRIES",
    "CURRENCIES",
    "ENGINE_DIR",
    "TRUTH_FILES",
    "Category",
    "Country",
    "ShopConfig",
    "churn_window",
    "fraud_logit",
    "generate_shop",
]


def existing_shop(db: SourceDatabase) -> str | None:
    """What a generate would replace, named for the user; None when there is nothing to lose.

    A SQLite shop is its file. A MySQL database counts once any shop table in it holds a row (rows
    typed in by hand included): generating drops and recreates those tables.
    """
    if db.kind == "sqlite":
        return str(db.sqlite_path) if db.sqlite_path.exists() else None
    tables = db.tables_with_rows()
    return f"a shop in {db.redacted_url} (rows in {', '.join(tables)})" if tables else None


def generate_shop(config: ShopConfig, source_url: str, truth_dir: Path, progress: bool = True) -> dict[str, int]:
    """Build the demo shop: (re)create the source schema, write every table, then the truth files.

    Deterministic: the same config gives byte-identical table contents. Returns row counts per table.
    """
    config.validate()
    started = time.perf_counter()
    truth_dir = Path(truth_dir)
    db = SourceDatabase(source_url)
    state = State.new(config)
    n_legacy = int(round(LEGACY_SHARE * config.customers))
    out = Run(state, config.days, config.seed, config.dirty_rate, progress=progress).run(
        n_signups=config.customers - n_legacy, n_legacy=n_legacy
    )
    written = bulk_load(db, out.inserts, progress)
    counts = {t.name: int(written.get(t.name, 0)) for t in schema.TABLES}
    state.remember_abandoned(out.abandoned_new)  # the retention job deletes them in a later simulate
    truth_dir.mkdir(parents=True, exist_ok=True)
    clear_truth(truth_dir)
    seconds = round(time.perf_counter() - started, 2)
    run_info = {
        "kind": "generate",
        "days": config.days,
        "start_date": config.start_date.isoformat(),
        "end_date": config.end_date.isoformat(),
        "seed": config.seed,
        "inserted": counts,
        "seconds": seconds,
    }
    record_run(truth_dir, state, out, counts, run_info)
    return counts
