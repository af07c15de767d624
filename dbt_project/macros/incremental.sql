{#
  Building blocks of the incremental marts (fct_orders, fct_order_items, fct_payments,
  conversion_funnel). Each such mart keeps an _extracted_at column and rebuilds only the rows that
  any raw change since its previous build can touch:

    changed keys  raw versions (insert, update or delete marker) extracted after the watermark,
                  mapped to the mart's key through every version of the changed source row (a
                  delete marker carries only its primary key; its earlier versions say which order,
                  line or session it belonged to)
    newcomers     rows the mart should hold but does not (say, an order re-admitted from
                  quarantine once its customer was fixed)
    leavers       rows the mart holds but should not (deleted, erased or newly quarantined keys),
                  removed by a post-hook (or a pre-hook for aggregates) in the same transaction

  so that an incremental build equals a full rebuild (`dbt build --full-refresh`), which
  tests/test_dbt_incremental.py checks after `shoplake simulate`.
#}


{#
  The watermark: the latest _extracted_at the mart (or `relation`) holds, as a timestamp literal. Every raw
  version extracted after the previous build is later than it (extraction stamps a version with the
  time of its run, and a build only ever holds versions extracted before it started). On a full
  build, the start of time.
#}
{% macro incremental_watermark(relation=none) -%}
    {%- set watermark = none -%}
    {%- if execute and is_incremental() -%}
        {%- set result = run_query('select max(_extracted_at) from ' ~ (this if relation is none else relation)) -%}
        {%- set watermark = result.columns[0].values()[0] -%}
    {%- endif -%}
    {%- if watermark is none -%}
        cast('1900-01-01 00:00:00' as timestamp)
    {%- else -%}
        cast('{{ watermark }}' as timestamp)
    {%- endif -%}
{%- endmacro %}


{#
  Distinct values of `value_column` over every raw version of the `table_name` rows (keyed by
  `key_column`) that have a version extracted after `since`. With value_column = key_column, the
  changed keys themselves.
#}
{% macro changed_since(table_name, key_column, value_column, since) -%}
    {%- if value_column == key_column -%}
select distinct changed.{{ key_column }}
from {{ source('raw', table_name) }} as changed
where changed._extracted_at > {{ since }}
    {%- else -%}
select distinct versions.{{ value_column }}
from {{ source('raw', table_name) }} as versions
where versions.{{ value_column }} is not null
  and versions.{{ key_column }} in (
      select changed.{{ key_column }}
      from {{ source('raw', table_name) }} as changed
      where changed._extracted_at > {{ since }}
  )
    {%- endif -%}
{%- endmacro %}


{#
  Curated rows whose exchange rate (currency on the day in `date_expression`) was extracted after
  `since`: a late or corrected rate changes their USD values.
#}
{% macro rows_with_fx_changed_since(relation, key_column, currency_column, date_expression, since) -%}
select rows_to_convert.{{ key_column }}
from {{ relation }} as rows_to_convert
inner join (
    select distinct currency, rate_date
    from {{ source('raw', 'fx_rates') }}
    where _extracted_at > {{ since }}
) as changed_rates
    on changed_rates.currency = rows_to_convert.{{ currency_column }}
    and changed_rates.rate_date = {{ date_expression }}
{%- endmacro %}


{# Keys of `population` (a select of key_column) that the mart does not hold yet. #}
{% macro keys_missing_from_this(population, key_column) -%}
select population.{{ key_column }}
from ({{ population }}) as population
where population.{{ key_column }} not in (select {{ key_column }} from {{ this }})
{%- endmacro %}


{# Post-hook: drop the mart's rows whose key left `population` (a select of key_column). #}
{% macro delete_rows_missing_from(population, key_column) -%}
delete from {{ this }}
where {{ key_column }} not in (
    select population.{{ key_column }}
    from ({{ population }}) as population
)
{%- endmacro %}


{#
  conversion_funnel: the session dates to rebuild after web events changed since `since`. A session
  belongs to the day of its first event, so a change to any event of a session touches the day the
  session started before the change (over every raw version of its events) and the day it starts
  after it (over its curated events); both are rebuilt.
#}
{% macro session_dates_changed_since(since) -%}
with touched_sessions as (

    {{ changed_since('web_events', 'event_id', 'session_id', since) }}

),

session_starts as (

    select min(occurred_at) as started_at
    from {{ source('raw', 'web_events') }}
    where session_id in (select session_id from touched_sessions)
    group by session_id
    union all
    select min(occurred_at) as started_at
    from {{ ref('web_events') }}
    where session_id in (select session_id from touched_sessions)
    group by session_id

)

select distinct cast(started_at as date) as session_date
from session_starts
where started_at is not null
{%- endmacro %}


{#
  curated.web_events and quarantine.web_events: the events to rebuild after web events changed
  since `since`. The duplicate_event rule compares the events of one session, so a change to one
  event can move another of its session in or out of quarantine: every event of every touched
  session (over every raw version, so a deleted event and a session it left are included) is
  rebuilt, and so is every session with an event whose customer, product or order changed, which
  makes the incremental build equal a full one.
#}
{% macro web_events_to_rebuild(since) -%}
select distinct scope.event_id
from {{ source('raw', 'web_events') }} as scope
where scope.session_id in (
    {{ changed_since('web_events', 'event_id', 'session_id', since) }}
    union
    -- the orphan rules judge an event by its customer, product and order: a change to one of those
    -- (a deleted order, say) can move the event in or out of quarantine
    select referring.session_id
    from {{ source('raw', 'web_events') }} as referring
    where referring.customer_id in ({{ changed_since('customers', 'customer_id', 'customer_id', since) }})
       or referring.product_id in ({{ changed_since('products', 'product_id', 'product_id', since) }})
       or referring.order_id in ({{ changed_since('orders', 'order_id', 'order_id', since) }})
)
{%- endmacro %}


{#
  The watermark of the web events pair, read from curated.web_events (quarantine.web_events runs
  before it and cannot ref it): the latest _extracted_at the previous build took in.
#}
{% macro web_events_watermark() -%}
    {%- set curated = adapter.get_relation(database=this.database, schema=generate_schema_name('curated', none), identifier='web_events') if execute else none -%}
    {%- if curated is none -%}
        cast('1900-01-01 00:00:00' as timestamp)
    {%- else -%}
        {{ incremental_watermark(curated) }}
    {%- endif -%}
{%- endmacro %}
