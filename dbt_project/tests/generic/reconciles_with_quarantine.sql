{#
  Invariant "no row is dropped silently", for one curated model:
      latest live raw keys = curated rows + distinct quarantined keys
  and no key is both curated and quarantined (so the counts cannot balance by accident).
  Returns one row, with the three counts, when it does not hold.
#}
{% test reconciles_with_quarantine(model, source_table, key_columns, quarantine) %}

with live as (

    select count(*) as live_keys
    from ({{ latest_live_versions(source_table, key_columns) }}) as latest

),

curated as (

    select count(*) as curated_rows
    from {{ model }}

),

quarantined as (

    select count(*) as quarantined_keys
    from (
        select distinct {{ key_columns | join(', ') }}
        from {{ quarantine }}
    ) as keys

),

both_curated_and_quarantined as (

    select count(*) as overlapping_keys
    from {{ model }} as curated_rows
    where exists (
        select 1
        from {{ quarantine }} as quarantined_rows
        where {% for key in key_columns %}quarantined_rows.{{ key }} is not distinct from curated_rows.{{ key }}{% if not loop.last %} and {% endif %}{% endfor %}
    )

)

select
    live.live_keys,
    curated.curated_rows,
    quarantined.quarantined_keys,
    both_curated_and_quarantined.overlapping_keys
from live
cross join curated
cross join quarantined
cross join both_curated_and_quarantined
where live.live_keys <> curated.curated_rows + quarantined.quarantined_keys
   or both_curated_and_quarantined.overlapping_keys > 0

{% endtest %}
