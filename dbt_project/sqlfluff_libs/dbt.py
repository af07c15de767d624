"""dbt's cross-database macros, rendered as dbt-duckdb renders them."""


def current_timestamp():
    return "now()"


def date_trunc(datepart, date):
    return f"date_trunc('{datepart}', {date})"


def dateadd(datepart, interval, from_date_or_timestamp):
    return f"date_add({from_date_or_timestamp}, interval ({interval}) {datepart})"


def datediff(first_date, second_date, datepart):
    return f"date_diff('{datepart}', {first_date}::timestamp, {second_date}::timestamp)"


def generate_series(upper_bound):
    return f"select unnest(generate_series(1, {upper_bound})) as generated_number"
