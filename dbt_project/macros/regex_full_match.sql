{#
  True when the whole of `expression` matches `pattern` (a regular expression literal).
  DuckDB has regexp_full_match; engines with regexp_like (Trino, Spark) rely on the pattern being
  anchored (^...$), as vocabulary.EMAIL_PATTERN is.
#}
{% macro regex_full_match(expression, pattern) -%}
    {{ return(adapter.dispatch('regex_full_match')(expression, pattern)) }}
{%- endmacro %}

{% macro default__regex_full_match(expression, pattern) -%}
    regexp_like({{ expression }}, '{{ pattern | replace("'", "''") }}')
{%- endmacro %}

{% macro duckdb__regex_full_match(expression, pattern) -%}
    regexp_full_match({{ expression }}, '{{ pattern | replace("'", "''") }}')
{%- endmacro %}
