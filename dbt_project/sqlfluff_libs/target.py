"""dbt's target: the profile's one output (dbt_project/profiles.yml)."""

name = "dev"
type = "duckdb"
database = "transform"
schema = "main"
