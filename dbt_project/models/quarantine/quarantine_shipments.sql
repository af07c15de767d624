{{ config(schema='quarantine', alias='shipments') }}

-- Shipments whose latest live version breaks a quality rule (orchestration/source/quality_rules.py):
--   shipped_before_ordered  shipped_at is earlier than the ordered_at of its order (the order's
--                           latest live version, quarantined or not)
-- One row per (shipment, rule broken).

with latest as (

    {{ latest_live_versions('shipments', ['shipment_id']) }}

),

orders as (

    select order_id, ordered_at
    from ({{ latest_live_versions('orders', ['order_id']) }}) as latest_orders

),

shipped_before_ordered as (

    select
        latest.shipment_id,
        'shipped_before_ordered' as rule,
        'shipped_at=' || cast(latest.shipped_at as varchar)
            || ', ordered_at=' || cast(orders.ordered_at as varchar) as offending_values,
        latest._extracted_at
    from latest
    inner join orders
        on orders.order_id = latest.order_id
    where latest.shipped_at < orders.ordered_at

),

final as (

    select * from shipped_before_ordered

)

select * from final
