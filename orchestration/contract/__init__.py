"""The source contract: what Shoplake assumes about a shop's database, and nothing more.

    schema.py / schema.sql   the 13 source tables, their columns, keys and change markers
    database.py              connecting to MySQL/MariaDB or the embedded SQLite shop
    quality_rules.py         the rules a row must meet to leave quarantine, by name
    seeds/                   reference data (countries and regions), also dbt's seed

Everything else imports this package; it imports nothing else of the project.
"""
