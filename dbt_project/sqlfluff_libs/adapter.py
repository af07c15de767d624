"""dbt's adapter object: a dispatched macro renders as its duckdb__ version, no relation exists."""


def _regex_full_match(expression, pattern):
    quoted = str(pattern).replace("'", "''")
    return f"regexp_full_match({expression}, '{quoted}')"


def _average_to_cent(total, count, scale=2):
    units = f"({count}) * {10 ** (int(scale) - 2)}"
    scaled = f"cast(({total}) * {10 ** int(scale)} as hugeint)"
    return f"cast(((2 * {scaled} + {units}) // (2 * {units})) * 0.01 as decimal(18,2))"


_DUCKDB = {"regex_full_match": _regex_full_match, "average_to_cent": _average_to_cent}


def dispatch(macro_name, macro_namespace=None):
    if macro_name in _DUCKDB:
        return _DUCKDB[macro_name]

    def call(*args):
        return f"{macro_name}({', '.join(str(a) for a in args)})"

    return call


def get_relation(database=None, schema=None, identifier=None):
    return None
