"""The dbt models' compiled SQL run as bare DuckDB statements: what DuckDB alone needs for the transform.

Reads a dbt build's target folder (manifest.json, run_results.json and the compiled SQL), drops the
tables of every model that build ran in a copy of the transform database (untimed), then runs
``CREATE OR REPLACE TABLE <relation> AS <compiled SQL>`` for each of them in dependency order, on
one connection prepared by the same dbt-duckdb plugin dbt uses (iceberg extension loaded from the
project, the ``pseudonymize`` UDF). The copy's ``raw.*`` views still point at the Iceberg snapshots
that build read, so both see the same data.

Left out on purpose, because they are not the models' SQL: dbt tests, seeds (already loaded in the
copy) and model hooks (the incremental marts' ``delete_rows_missing_from`` post-hooks).

    .venv/bin/python benchmarks/bare_duckdb.py --target <dbt target folder> --database <copy of transform.duckdb>

Prints one JSON object: total seconds and seconds per model.
"""

from __future__ import annotations

import argparse
import json
import sys
import time
from graphlib import TopologicalSorter
from pathlib import Path

PROJECT_ROOT = Path(__file__).resolve().parent.parent
if str(PROJECT_ROOT) not in sys.path:
    sys.path.insert(0, str(PROJECT_ROOT))

PLUGIN_MODULE = "orchestration.lakehouse.duckdb_plugin"  # the plugin profiles.yml gives dbt


def built_models(target: Path) -> list[dict]:
    """The models the build ran successfully, in dependency order, each with its compiled SQL."""
    manifest = json.loads((target / "manifest.json").read_text())
    results = json.loads((target / "run_results.json").read_text())["results"]
    ran = {r["unique_id"] for r in results if r["status"] == "success" and r["unique_id"].startswith("model.")}
    nodes = {uid: manifest["nodes"][uid] for uid in ran}
    graph = {uid: [d for d in node["depends_on"]["nodes"] if d in nodes] for uid, node in nodes.items()}
    ordered = []
    for uid in TopologicalSorter(graph).static_order():
        node = nodes[uid]
        sql = node.get("compiled_code")
        if not sql:  # older manifests keep the compiled SQL only on disk
            sql = (target / "compiled" / node["package_name"] / node["original_file_path"]).read_text()
        ordered.append({"unique_id": uid, "relation": node["relation_name"], "sql": sql.strip().rstrip(";")})
    return ordered


def connect(database: Path):
    from dbt.adapters.duckdb.plugins import BasePlugin

    from orchestration.lakehouse import duckdb_extensions
    from orchestration.settings import Settings

    con = duckdb_extensions.connect(Settings.from_env().duckdb_extension_dir, str(database))
    BasePlugin.create(PLUGIN_MODULE, config={}).configure_connection(con)
    return con


def run_models(target: Path, database: Path, memory_limit: str | None = None) -> dict:
    models = built_models(target)
    con = connect(database)
    try:
        if memory_limit:  # DuckDB's default is 80% of the machine's memory
            con.execute(f"SET memory_limit = '{memory_limit}'")
        for model in reversed(models):  # a fresh build, like dbt's first one: no old table to replace
            con.execute(f"DROP TABLE IF EXISTS {model['relation']}")
        con.execute("CHECKPOINT")
        per_model = {}
        started = time.perf_counter()
        for model in models:
            t = time.perf_counter()
            con.execute(f"CREATE OR REPLACE TABLE {model['relation']} AS {model['sql']}")
            per_model[model["unique_id"]] = round(time.perf_counter() - t, 3)
        seconds = time.perf_counter() - started
    finally:
        con.close()
    return {"seconds": round(seconds, 3), "models": per_model}


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("--target", type=Path, required=True, help="the dbt build's target folder")
    parser.add_argument(
        "--database", type=Path, required=True, help="a copy of the transform database (it is modified)"
    )
    parser.add_argument("--memory-limit", default=None, help="DuckDB memory_limit, e.g. 2GB (default: DuckDB's own)")
    args = parser.parse_args()
    print(json.dumps(run_models(args.target, args.database, args.memory_limit)))


if __name__ == "__main__":
    main()
