{{
    config(
        materialized='incremental',
        incremental_strategy='append',
        on_schema_change='fail',
        pre_hook="{% if is_incremental() %}delete from {{ this }} where event_id in ({{ web_events_to_rebuild(web_events_watermark()) }}){% endif %}"
    )
}}

-- Clickstream: session_start, product_view, add_to_cart, checkout, purchase.
-- Abandoned carts are hard deleted after 30 days.
-- The latest live version of every web_events key, minus the keys quarantined by a quality rule.
-- Incremental (the largest table): a build rebuilds only the events of the sessions that changed
-- since the previous build (macros/incremental.sql); the pre-hook clears them first, so deleted
-- and newly quarantined events leave.

with latest as (

    {%- if is_incremental() %}
    {{ latest_live_versions('web_events', ['event_id'], only_keys=web_events_to_rebuild(web_events_watermark())) }}
    {%- else %}
    {{ latest_live_versions('web_events', ['event_id']) }}
    {%- endif %}

),

valid as (

    select *
    from latest
    where {{ not_quarantined('latest', ref('quarantine_web_events'), ['event_id']) }}

),

final as (

    select
        cast(event_id as bigint) as event_id,
        cast(session_id as varchar) as session_id,
        cast(customer_id as bigint) as customer_id,
        cast(event_type as varchar) as event_type,
        cast(product_id as bigint) as product_id,
        cast(order_id as bigint) as order_id,
        cast(channel as varchar) as channel,
        cast(traffic_source as varchar) as traffic_source,
        cast(device_type as varchar) as device_type,
        cast(country as varchar) as country,
        cast(occurred_at as timestamp) as occurred_at,
        cast(properties as varchar) as properties,
        cast(updated_at as timestamp) as updated_at,
        _extracted_at
    from valid

)

select * from final
