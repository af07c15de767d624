"""What sqlfluff's jinja templater needs of dbt beyond its own builtins (ref, source, config, var, this).

Each module here is a name in the templates' context: ``dbt`` renders the cross-database macros the
models call as the DuckDB SQL dbt-duckdb generates for them, ``adapter`` the dispatched macros as
plain calls, ``target`` the profile's target. Only `make lint` (sqlfluff) loads them; dbt never does.
"""
