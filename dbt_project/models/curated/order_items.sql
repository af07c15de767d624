-- Order lines. unit_price is the local price charged per unit before the line discount.
-- The latest live version of every order_items key, minus the keys quarantined by a quality rule.

with latest as (

    {{ latest_live_versions('order_items', ['order_item_id']) }}

),

valid as (

    select *
    from latest
    where {{ not_quarantined('latest', ref('quarantine_order_items'), ['order_item_id']) }}

),

final as (

    select
        cast(order_item_id as bigint) as order_item_id,
        cast(order_id as bigint) as order_id,
        cast(product_id as bigint) as product_id,
        cast(quantity as integer) as quantity,
        cast(unit_price as decimal(12, 2)) as unit_price,
        cast(line_discount as decimal(12, 2)) as line_discount,
        cast(updated_at as timestamp) as updated_at,
        _extracted_at
    from valid

)

select * from final
