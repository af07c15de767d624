-- Clickstream: session_start, product_view, add_to_cart, checkout, purchase. Abandoned carts are hard deleted after 30 days.
-- The latest live version of every web_events key, minus the keys quarantined by a quality rule.

with latest as (

    {{ latest_live_versions('web_events', ['event_id']) }}

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
