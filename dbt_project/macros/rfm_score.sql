{#
  A tie-aware quintile score (1-5) of `column` among the rows of the window, worst first
  (`descending` when a smaller value is better, as for days since the last order):

      1 + floor(5 * (average rank - 1) / rows)

  Equal values share their average rank, so they always share a score, and the quintile
  boundaries fall between values, never inside a group of equal ones (which ntile() would cut by
  row order). In a shop where most customers bought once, the one-order customers all sit around
  the middle of their big group: frequency 2 when they are 70% of buyers, never the 3 or 4 that
  made some of them "loyal". Integer arithmetic up to the division, so the floor is exact.
#}
{% macro rfm_score(column, descending=false) -%}
{%- set order = column ~ (' desc' if descending else '') -%}
cast(1 + floor(
    5.0 * (2 * (rank() over (order by {{ order }}) - 1) + count(*) over (partition by {{ column }}) - 1)
    / (2 * count(*) over ())
) as integer)
{%- endmacro %}
