{{ config(schema='quarantine', alias='order_items') }}

-- Order lines whose latest live version breaks a quality rule (orchestration/source/quality_rules.py):
--   null_required_field    product_id is NULL
--   orphan_product         product_id names no product of curated.products
--   non_positive_quantity  quantity is zero or negative
-- One row per (order line, rule broken).

with latest as (

    {{ latest_live_versions('order_items', ['order_item_id']) }}

),

null_required_field as (

    select
        order_item_id,
        'null_required_field' as rule,
        'product_id=NULL' as offending_values,
        _extracted_at
    from latest
    where product_id is null

),

orphan_product as (

    select
        latest.order_item_id,
        'orphan_product' as rule,
        'product_id=' || cast(latest.product_id as varchar) as offending_values,
        latest._extracted_at
    from latest
    where latest.product_id is not null
      and not exists (
          select 1
          from {{ ref('products') }} as products
          where products.product_id = latest.product_id
      )

),

non_positive_quantity as (

    select
        order_item_id,
        'non_positive_quantity' as rule,
        'quantity=' || cast(quantity as varchar) as offending_values,
        _extracted_at
    from latest
    where quantity <= 0

),

final as (

    select * from null_required_field
    union all
    select * from orphan_product
    union all
    select * from non_positive_quantity

)

select * from final
