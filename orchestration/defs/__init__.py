"""The stages of the code location, one folder each, in the order data flows:

    extract/    source tables -> Iceberg raw (incremental, card numbers tokenized), raw card scans
    transform/  dbt on DuckDB: raw -> curated + quarantine -> prod, published to Iceberg
    checks/     pandera and card-scan checks on curated and prod, write-audit-publish, the compliance report
    alerts/     sensors: low stock, high-risk queue, failed runs and checks, refused challengers -> prod.alerts,
                webhook, e-mail
    schedules.py  the jobs and schedules that run them (by asset selection, never by import)

The ML stage is the top-level ``ml_assets`` package. A stage imports only the source contract, the
shared library (orchestration.lakehouse), resources, settings and policies; only
orchestration/definitions.py imports the stages (tests/test_import_rules.py holds them to it).
"""
