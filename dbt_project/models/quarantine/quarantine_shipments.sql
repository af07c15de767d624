{{ config(schema='quarantine', alias='shipments') }}

-- Shipments whose latest live version breaks a quality rule (orchestration/contract/quality_rules.py):
--   shipped_before_ordered  shipped_at is earlier than the ordered_at of its order (the order's
--                           latest live version, quarantined or not)
--   null_required_field     a NULL order, carrier, status or time (a zero date arrives as NULL)
--   invalid_value           status outside its vocabulary ('' included), an empty carrier
--   out_of_range            shipment_id or order_id below 1
--   inconsistent_fields     delivered without a delivery time (or the reverse), delivered or promised
--                           before it shipped
--   orphan_order            order_id names no order live at the source
-- One row per (shipment, rule broken).

with latest as (

    {{ latest_live_versions('shipments', ['shipment_id']) }}

),

orders as (

    select
        order_id,
        ordered_at
    from ({{ latest_live_versions('orders', ['order_id']) }}) as latest_orders

),

shipped_before_ordered as (

    select
        latest.shipment_id,
        'shipped_before_ordered' as rule,
        {{ shown_value('latest.shipped_at') }} || ', ' || {{ shown_value('orders.ordered_at') }} as offending_values,
        latest._extracted_at
    from latest
    inner join orders
        on orders.order_id = latest.order_id
    where latest.shipped_at < orders.ordered_at

),

structural as (

    {{ rule_violations('latest', ['shipment_id'], [
        required('order_id'),
        required('carrier'),
        required('shipped_at'),
        required('promised_at'),
        required('status'),
        required('updated_at'),
        not_blank('carrier'),
        one_of('status', var('vocabularies')['shipment_status']),
        in_range('shipment_id', 'shipment_id >= 1'),
        in_range('order_id', 'order_id >= 1'),
        consistent("(delivered_at is not null) = (status = 'delivered')", ['status', 'delivered_at']),
        consistent('delivered_at >= shipped_at', ['shipped_at', 'delivered_at']),
        consistent('promised_at >= shipped_at', ['shipped_at', 'promised_at']),
        references('orphan_order', 'order_id', 'select order_id from orders', 'order_id'),
    ]) }}

),

final as (

    select * from shipped_before_ordered
    union all
    select * from structural

)

select * from final
