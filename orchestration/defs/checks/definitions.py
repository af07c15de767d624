"""Data-quality asset checks on curated, quarantine and prod (beyond dbt tests and the raw card scan)."""

from orchestration.defs.checks.quality_checks import lakehouse_quality_checks

QUALITY_CHECKS: list = [lakehouse_quality_checks]
