{#
  The latest live version of every key of a raw change-history table.

  raw.<table> holds one row per captured version (_op = insert | update | delete). The latest
  version of a key is the one with the greatest _extracted_at; on a tie a delete marker wins
  (extraction detects deletes after it reads changed rows, so within one capture the delete is the
  later event), then the greatest updated_at. Keys whose latest version is a delete marker no
  longer exist and are left out.

  Returns a SELECT of every raw column plus _version_rank (always 1); callers list the columns
  they keep, which drops _op, _dagster_run_id and _version_rank. `only_keys` (a select of the first
  key column) limits it to those keys, for incremental builds.
#}
{% macro latest_live_versions(table_name, key_columns, only_keys=none) -%}
select *
from (
    select
        versions.*,
        row_number() over (
            partition by {% for key in key_columns %}versions.{{ key }}{% if not loop.last %}, {% endif %}{% endfor %}
            order by
                versions._extracted_at desc,
                case when versions._op = 'delete' then 0 else 1 end,
                versions.updated_at desc
        ) as _version_rank
    from {{ source('raw', table_name) }} as versions
    {%- if only_keys is not none %}
    where versions.{{ key_columns[0] }} in ({{ only_keys }})
    {%- endif %}
) as ranked
where _version_rank = 1
  and _op <> 'delete'
{%- endmacro %}


{#
  Condition "this row's key is not in the quarantine model", for `where` clauses of curated models.
  NULL-safe: a zero date in a key column (fx_rates.rate_date) arrives as NULL and is quarantined
  under that NULL key.
#}
{% macro not_quarantined(row_alias, quarantine_relation, key_columns) -%}
not exists (
    select 1
    from {{ quarantine_relation }} as quarantined
    where {% for key in key_columns %}quarantined.{{ key }} is not distinct from {{ row_alias }}.{{ key }}{% if not loop.last %} and {% endif %}{% endfor %}
)
{%- endmacro %}


{#
  An empty quarantine model for a table without quality rules, with the same columns (and key
  types) as every other quarantine model, so that every source table has one.
#}
{% macro empty_quarantine(table_name, key_columns) -%}
select
    {%- for key in key_columns %}
    live.{{ key }},
    {%- endfor %}
    cast(null as varchar) as rule,
    cast(null as varchar) as offending_values,
    live._extracted_at
from ({{ latest_live_versions(table_name, key_columns) }}) as live
where 1 = 0
{%- endmacro %}
