-- The catalogue. Prices are list prices in USD; orders carry the local price actually charged.
-- The latest live version of every products key, minus the keys quarantined by a quality rule.

with latest as (

    {{ latest_live_versions('products', ['product_id']) }}

),

valid as (

    select *
    from latest
    where {{ not_quarantined('latest', ref('quarantine_products'), ['product_id']) }}

),

final as (

    select
        cast(product_id as bigint) as product_id,
        cast(sku as varchar) as sku,
        cast(name as varchar) as name,
        cast(category_id as integer) as category_id,
        cast(list_price_usd as decimal(12, 2)) as list_price_usd,
        cast(unit_cost_usd as decimal(12, 2)) as unit_cost_usd,
        cast(is_active as boolean) as is_active,
        cast(attributes as varchar) as attributes,
        cast(created_at as timestamp) as created_at,
        cast(updated_at as timestamp) as updated_at,
        _extracted_at
    from valid

)

select * from final
