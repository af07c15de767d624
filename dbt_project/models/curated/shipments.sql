-- One shipment per shipped order.
-- The latest live version of every shipments key, minus the keys quarantined by a quality rule.

with latest as (

    {{ latest_live_versions('shipments', ['shipment_id']) }}

),

valid as (

    select *
    from latest
    where {{ not_quarantined('latest', ref('quarantine_shipments'), ['shipment_id']) }}

),

final as (

    select
        cast(shipment_id as bigint) as shipment_id,
        cast(order_id as bigint) as order_id,
        cast(carrier as varchar) as carrier,
        cast(shipped_at as timestamp) as shipped_at,
        cast(promised_at as timestamp) as promised_at,
        cast(delivered_at as timestamp) as delivered_at,
        cast(status as varchar) as status,
        cast(updated_at as timestamp) as updated_at,
        _extracted_at
    from valid

)

select * from final
