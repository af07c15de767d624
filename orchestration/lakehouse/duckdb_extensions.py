"""DuckDB's iceberg and avro extensions, loaded from their Python wheels (no network).

``INSTALL iceberg`` would download from the internet; instead the wheel's binary is installed once
into a project-local extension directory, after which plain ``LOAD iceberg`` works everywhere,
including inside dbt-duckdb's own connections.
"""

from __future__ import annotations

from pathlib import Path

import duckdb

EXTENSIONS = ("avro", "iceberg")  # iceberg needs avro: install in this order


def _wheel_binary(name: str) -> Path:
    module = __import__(f"duckdb_extension_{name}")
    found = sorted(Path(module.__file__).parent.glob(f"extensions/v{duckdb.__version__}/{name}.duckdb_extension"))
    if not found:
        raise RuntimeError(
            f"the DuckDB {name} extension for duckdb {duckdb.__version__} is not installed: "
            f"install duckdb-extension-{name}=={duckdb.__version__} (pinned in pyproject.toml)"
        )
    return found[0]


def _config(extension_dir: Path) -> dict[str, str]:
    # DuckDB wants a home directory for extension work even when told where extensions live; a
    # service account or a container may have none, so give it one inside the project's data.
    return {"extension_directory": str(extension_dir), "home_directory": str(extension_dir)}


def install_extensions(extension_dir: Path) -> None:
    """Copy the wheel binaries into ``extension_dir`` unless they are already there."""
    extension_dir.mkdir(parents=True, exist_ok=True)
    if all(any(extension_dir.rglob(f"v{duckdb.__version__}/*/{n}.duckdb_extension")) for n in EXTENSIONS):
        return
    con = duckdb.connect(config=_config(extension_dir) | {"autoinstall_known_extensions": False})
    try:
        for name in EXTENSIONS:
            con.execute(f"INSTALL '{_wheel_binary(name)}'")
    finally:
        con.close()


def connect(extension_dir: Path, database: str = ":memory:", read_only: bool = False) -> duckdb.DuckDBPyConnection:
    """A DuckDB connection that can read Iceberg tables with ``iceberg_scan``."""
    install_extensions(extension_dir)
    con = duckdb.connect(database, read_only=read_only, config=_config(extension_dir))
    for name in EXTENSIONS:
        con.execute(f"LOAD {name}")
    return con
