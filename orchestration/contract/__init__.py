"""The source contract: what Shoplake assumes about a shop's database, and nothing more.

    schema.py / schema.sql   the 13 source tables, their columns, keys and change markers
    database.py              connecting to MySQL/MariaDB or the embedded SQLite shop
    quality_rules.py         the rules a row must meet to leave quarantine, by name
    vocabulary.py            the code lists and formats of the columns (statuses, channels, e-mail),
                             read by the demo shop, pandera and (as dbt_project.yml vars) dbt
    seeds/                   reference data (countries, regions, currencies), also dbt's seed

Everything else imports this package; it imports nothing else of the project.
"""
