"""Benchmark: what a published table's checks read after a day of deletes, with and without skipping
the files a delete only rewrote, side by side in one run.

    .venv/bin/python benchmarks/pipeline.py --scale M --keep --work-dir /tmp/benchM
    .venv/bin/python benchmarks/check_scope.py --home /tmp/benchM/home [--table curated.web_events]

Over a lakehouse a benchmark kept (or any Shoplake home), it takes the table's current snapshot and
the last snapshot the previous run published (where that run's checks passed), and runs the card-number
scan and the pandera check of that table three ways: over the files added since that snapshot minus
the delete-only rewrites of checked files (what the quality-check step does), over every file added
since (rewrites included: the scope before rewrites were recognized), and over the whole table. It
prints files, rows and seconds of each; nothing is written.
"""

from __future__ import annotations

import argparse
import os
import sys
import time
from pathlib import Path

PROJECT_ROOT = Path(__file__).resolve().parent.parent
if str(PROJECT_ROOT) not in sys.path:
    sys.path.insert(0, str(PROJECT_ROOT))


def previous_run_snapshot(table) -> int | None:
    """The newest ancestor of the current snapshot published by another run than the current one."""
    from pyiceberg.table.snapshots import ancestors_of

    from orchestration.lakehouse.publish import PUBLISHED_BY_PROPERTY

    def run_of(snapshot):
        return snapshot.summary.get(PUBLISHED_BY_PROPERTY) if snapshot.summary else None

    current = table.current_snapshot()
    return next((s.snapshot_id for s in ancestors_of(current, table.metadata) if run_of(s) != run_of(current)), None)


def main() -> int:
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("--home", type=Path, required=True, help="a SHOPLAKE_HOME with published tables")
    parser.add_argument("--table", default="curated.web_events")
    args = parser.parse_args()
    os.environ["SHOPLAKE_HOME"] = str(args.home.resolve())

    from orchestration import query
    from orchestration.defs.checks.pandera_batches import failure_cases
    from orchestration.defs.checks.quality_checks import schema_for
    from orchestration.lakehouse import increments
    from orchestration.lakehouse.card_scan import scan_published_table
    from orchestration.settings import Settings

    settings = Settings.from_env()
    tables: dict = {}
    con = query.connect(settings, namespaces=(args.table.split(".")[0],), tables=tables)
    ice = tables[args.table]
    base = previous_run_snapshot(ice)
    if base is None:
        print(f"{args.table} has no snapshot of an earlier run to start from", file=sys.stderr)
        return 1

    with_skip = increments.files_since(ice, base)
    all_new = increments.files_since(ice, base, skip_rewrites=False)  # the scope before rewrites were recognized
    layer, name = args.table.split(".")
    schema = schema_for(layer, name)

    print(f"{args.table}: snapshot {ice.current_snapshot().snapshot_id}, base {base} (the previous run's last publish)")
    print(f"{'scope':<44}{'files':>7}{'rows':>13}{'card scan s':>13}{'pandera s':>11}")
    for label, increment in (
        ("new files, delete-only rewrites skipped", with_skip),
        ("every file added since (rewrites read)", all_new),
        ("whole table", None),
    ):
        started = time.perf_counter()
        scan = scan_published_table(con, args.table, increment)
        scan_s = time.perf_counter() - started
        started = time.perf_counter()
        failure_cases(con, args.table, schema, increment=increment)
        pandera_s = time.perf_counter() - started
        files = len(increment.files) if increment else with_skip.table_files
        rows = increment.rows if increment else with_skip.table_rows
        print(f"{label:<44}{files:>7,}{rows:>13,}{scan_s:>13.2f}{pandera_s:>11.2f}")
        if not scan.passed:
            print(f"  {scan.leaks} card numbers found in {args.table} ({label})")
    print(f"skipped: {with_skip.rewritten_files} rewritten files, {with_skip.rewritten_rows:,} rows")
    con.close()
    return 0


if __name__ == "__main__":
    sys.exit(main())
