-- Stock on hand per product (one warehouse). Updated in place on every sale and restock.
-- The latest live version of every inventory key, minus the keys quarantined by a quality rule.

with latest as (

    {{ latest_live_versions('inventory', ['product_id']) }}

),

valid as (

    select *
    from latest
    where {{ not_quarantined('latest', ref('quarantine_inventory'), ['product_id']) }}

),

final as (

    select
        cast(product_id as bigint) as product_id,
        cast(quantity_on_hand as integer) as quantity_on_hand,
        cast(reorder_point as integer) as reorder_point,
        cast(last_restocked_at as timestamp) as last_restocked_at,
        cast(updated_at as timestamp) as updated_at,
        _extracted_at
    from valid

)

select * from final
