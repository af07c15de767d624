-- Orders in the shopper's local currency. Status moves placed -> paid -> shipped -> delivered
-- (or cancelled / returned) after insert.
-- The latest live version of every orders key, minus the keys quarantined by a quality rule.

with latest as (

    {{ latest_live_versions('orders', ['order_id']) }}

),

valid as (

    select *
    from latest
    where {{ not_quarantined('latest', ref('quarantine_orders'), ['order_id']) }}

),

final as (

    select
        cast(order_id as bigint) as order_id,
        cast(customer_id as bigint) as customer_id,
        cast(ordered_at as timestamp) as ordered_at,
        cast(status as varchar) as status,
        cast(channel as varchar) as channel,
        cast(currency as varchar) as currency,
        cast(shipping_country as varchar) as shipping_country,
        cast(promo_code as varchar) as promo_code,
        cast(subtotal as decimal(12, 2)) as subtotal,
        cast(discount as decimal(12, 2)) as discount,
        cast(shipping_fee as decimal(12, 2)) as shipping_fee,
        cast(total as decimal(12, 2)) as total,
        cast(notes as varchar) as notes,
        cast(updated_at as timestamp) as updated_at,
        _extracted_at
    from valid

)

select * from final
