{{ config(schema='quarantine', alias='inventory') }}

-- Inventory rows whose latest live version breaks a quality rule (orchestration/source/quality_rules.py):
--   negative_stock  quantity_on_hand is below zero
-- One row per (product, rule broken).

with latest as (

    {{ latest_live_versions('inventory', ['product_id']) }}

),

negative_stock as (

    select
        product_id,
        'negative_stock' as rule,
        'quantity_on_hand=' || cast(quantity_on_hand as varchar) as offending_values,
        _extracted_at
    from latest
    where quantity_on_hand < 0

),

final as (

    select * from negative_stock

)

select * from final
