"""Data-quality asset checks on curated, quarantine and prod (beyond dbt tests and the raw card scan),
and the compliance report built from their ledger."""

from orchestration.defs.checks.compliance import compliance_report
from orchestration.defs.checks.quality_checks import lakehouse_quality_checks

QUALITY_CHECKS: list = [lakehouse_quality_checks]
CHECKS_ASSETS: list = [compliance_report]
