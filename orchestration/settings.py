"""Runtime locations and secrets, read once from the environment.

Every default lives under one data root (``SHOPLAKE_HOME``, default ``data/`` in the project) so a
test can point the whole system at a temporary folder by setting a single variable.
"""

from __future__ import annotations

import os
import warnings
from dataclasses import dataclass
from pathlib import Path

PROJECT_ROOT = Path(__file__).resolve().parent.parent
DBT_PROJECT_DIR = PROJECT_ROOT / "dbt_project"

# Deliberately public and deliberately weak: it only exists so the demo runs with no set-up.
DEVELOPMENT_PII_KEY = "shoplake-development-key-do-not-use-in-production"


@dataclass(frozen=True)
class Settings:
    home: Path
    source_url: str
    catalog_uri: str
    warehouse: str
    duckdb_path: Path
    mlflow_tracking_uri: str
    mlflow_artifact_root: str
    dagster_home: Path
    pii_key: str
    pii_key_is_default: bool
    duckdb_memory_limit: str = "2.5GB"  # dbt's DuckDB (profiles.yml) and the publisher's; DuckDB spills beyond it
    # A source that stops answering must fail the read, not hang the run: seconds to open a connection,
    # and seconds one source query may take (a chunk is at most about 500k rows; a healthy MySQL
    # sends that in seconds, so the default only ever cuts a stuck server or a dead route).
    source_connect_timeout: float = 10.0
    source_read_timeout: float = 300.0

    @property
    def truth_dir(self) -> Path:
        """Where the generator writes its ground truth (never into the source tables)."""
        return self.home / "source" / "truth"

    @property
    def duckdb_extension_dir(self) -> Path:
        return self.home / "lakehouse" / "duckdb_extensions"

    @classmethod
    def from_env(cls, env: dict[str, str] | None = None) -> Settings:
        env = dict(os.environ if env is None else env)
        home = Path(env.get("SHOPLAKE_HOME") or PROJECT_ROOT / "data").resolve()
        lake = home / "lakehouse"
        mlflow_dir = home / "mlflow"
        pii_key = env.get("SHOPLAKE_PII_KEY", "")
        return cls(
            home=home,
            source_url=env.get("SHOPLAKE_SOURCE_URL") or f"sqlite:///{home / 'source' / 'shop.db'}",
            catalog_uri=env.get("SHOPLAKE_CATALOG_URI") or f"sqlite:///{lake / 'catalog.db'}",
            warehouse=env.get("SHOPLAKE_WAREHOUSE") or f"file://{lake / 'warehouse'}",
            duckdb_path=Path(env.get("SHOPLAKE_DUCKDB_PATH") or lake / "transform.duckdb"),
            mlflow_tracking_uri=env.get("MLFLOW_TRACKING_URI") or f"sqlite:///{mlflow_dir / 'mlflow.db'}",
            mlflow_artifact_root=env.get("SHOPLAKE_MLFLOW_ARTIFACTS") or f"file://{mlflow_dir / 'artifacts'}",
            dagster_home=Path(env.get("DAGSTER_HOME") or home / "dagster"),
            pii_key=pii_key or DEVELOPMENT_PII_KEY,
            pii_key_is_default=not pii_key,
            duckdb_memory_limit=env.get("SHOPLAKE_DUCKDB_MEMORY_LIMIT") or cls.duckdb_memory_limit,
            source_connect_timeout=_seconds(env, "SHOPLAKE_SOURCE_CONNECT_TIMEOUT", cls.source_connect_timeout),
            source_read_timeout=_seconds(env, "SHOPLAKE_SOURCE_READ_TIMEOUT", cls.source_read_timeout),
        )

    def warn_if_development_key(self, log=None) -> None:
        if self.pii_key_is_default:
            message = (
                "SHOPLAKE_PII_KEY is not set: card tokens and pseudonyms use the public development key. "
                "Set SHOPLAKE_PII_KEY to a secret of your own before loading real data."
            )
            (log.warning if log is not None else warnings.warn)(message)


def _seconds(env: dict[str, str], name: str, default: float) -> float:
    text = env.get(name)
    if not text:
        return default
    try:
        value = float(text)
    except ValueError:
        value = 0.0
    if not value > 0:
        raise ValueError(f"{name} must be a number of seconds above 0, got {text!r}: fix or unset it")
    return value
