"""The dbt-duckdb plugin that prepares every DuckDB connection dbt opens.

The raw layer is a set of views over ``iceberg_scan``, so each connection must load the iceberg
extension (from the project-local extension directory: ``INSTALL`` would need the internet), and
the curated models call ``pseudonymize(text)``, the same keyed HMAC token the extraction uses for
card numbers, so a pseudonym computed in SQL matches one computed in Python.

DuckDB keeps Python UDFs and loaded extensions per database instance, not per connection: a
function registered on the connection is visible on every cursor dbt derives from it, and
registering it twice fails. Both hooks therefore only do what is missing.
"""

from __future__ import annotations

from typing import Any

import duckdb
import pyarrow as pa
from dbt.adapters.duckdb.plugins import BasePlugin

from orchestration.lakehouse.duckdb_extensions import EXTENSIONS, install_extensions
from orchestration.lakehouse.pii import keyed_token
from orchestration.settings import Settings

PSEUDONYMIZE = "pseudonymize"


def pseudonymizer(key: str):
    """A vectorised ``pseudonymize`` over an Arrow string array: NULL in, NULL out."""

    def pseudonymize(values: pa.Array | pa.ChunkedArray) -> pa.Array:
        return pa.array(
            [None if v is None else keyed_token(v, key) for v in values.to_pylist()],
            type=pa.string(),
        )

    return pseudonymize


class Plugin(BasePlugin):
    def initialize(self, plugin_config: dict[str, Any]) -> None:
        self._settings = Settings.from_env()

    def update_connection_config(self, creds, config: dict[str, Any]) -> None:
        extension_dir = self._settings.duckdb_extension_dir
        install_extensions(extension_dir)
        config["extension_directory"] = str(extension_dir)
        config.setdefault("autoinstall_known_extensions", False)

    def configure_connection(self, conn: duckdb.DuckDBPyConnection) -> None:
        self._prepare(conn)

    def configure_cursor(self, cursor) -> None:
        self._prepare(cursor)

    def _prepare(self, conn: duckdb.DuckDBPyConnection) -> None:
        for name in EXTENSIONS:
            conn.execute(f"LOAD {name}")
        registered = conn.execute(
            "SELECT count(*) FROM duckdb_functions() WHERE function_name = ?", [PSEUDONYMIZE]
        ).fetchone()[0]
        if registered:
            return
        try:
            conn.create_function(
                PSEUDONYMIZE,
                pseudonymizer(self._settings.pii_key),
                [duckdb.sqltype("VARCHAR")],
                duckdb.sqltype("VARCHAR"),
                type="arrow",
                null_handling="special",
                side_effects=False,
            )
        except duckdb.CatalogException:
            # another connection to the same database instance registered it in the meantime
            pass
