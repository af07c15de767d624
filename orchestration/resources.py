"""Dagster resources: the one place runtime settings enter the asset graph."""

from __future__ import annotations

import os
import subprocess
import sys
from functools import cached_property
from pathlib import Path

import dagster as dg
from dagster_dbt import DbtCliResource, DbtProject
from dagster_dbt.compat import DBT_PYTHON_VERSION
from dagster_dbt.dbt_project import using_dagster_dev

from orchestration.settings import DBT_PROJECT_DIR, Settings


class LakehouseResource(dg.ConfigurableResource):
    """Where the source, the Iceberg catalog, DuckDB and MLflow live.

    Every field defaults to the environment (see the README's table of variables); set a field to
    override it for one deployment or test without touching the environment.
    """

    home: str | None = None
    source_url: str | None = None

    def settings(self) -> Settings:
        env = {}
        if self.home:
            env["SHOPLAKE_HOME"] = self.home
        if self.source_url:
            env["SHOPLAKE_SOURCE_URL"] = self.source_url
        return Settings.from_env({**os.environ, **env})


# dbt is installed next to this interpreter; never rely on PATH (a venv need not be activated).
DBT_EXECUTABLE = str(Path(sys.executable).parent / "dbt")

shoplake_dbt_project = DbtProject(project_dir=DBT_PROJECT_DIR, profiles_dir=DBT_PROJECT_DIR)


def parse_dbt_project(settings: Settings) -> subprocess.CompletedProcess:
    """Write dbt's manifest, which dagster-dbt reads when the definitions load."""
    return subprocess.run(
        [
            DBT_EXECUTABLE,
            "parse",
            "--quiet",
            "--project-dir",
            str(DBT_PROJECT_DIR),
            "--profiles-dir",
            str(DBT_PROJECT_DIR),
        ],
        env={**os.environ, "SHOPLAKE_DUCKDB_PATH": str(settings.duckdb_path)},
        check=False,
    )


# Under `dagster dev` the manifest is rebuilt on every (re)load so model edits show up at once; this
# replaces DbtProject.prepare_if_dev, whose dbt lookup goes through PATH. Elsewhere the manifest
# comes from `shoplake prepare` (make prepare), and nothing parses at import time.
if using_dagster_dev():
    parse_dbt_project(Settings.from_env())


class ShoplakeDbtCliResource(DbtCliResource):
    """dagster-dbt's dbt resource without two start-up costs of every invocation that Shoplake never
    uses (together 5.4 s per `dbt build` on the 2-core machine; a daily refresh runs two):

    - the version of the dbt executable, which dagster-dbt learns by running `dbt --version` (2 s):
      DBT_EXECUTABLE is the dbt-core installed next to this interpreter, whose version is imported;
    - an in-process dbt adapter, for which dagster-dbt loads the project's macros (3 s). It serves only
      ``fetch_row_counts()`` and ``fetch_column_metadata()``; the publish reports Shoplake's row counts.
    """

    @cached_property
    def _cli_version(self):
        return DBT_PYTHON_VERSION

    def _initialize_dbt_core_adapter(self, args):
        return None


def dbt_resource() -> DbtCliResource:
    return ShoplakeDbtCliResource(project_dir=shoplake_dbt_project, dbt_executable=DBT_EXECUTABLE)
