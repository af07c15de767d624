{{ config(schema='quarantine', alias='inventory') }}

-- Inventory rows whose latest live version breaks a quality rule (orchestration/contract/quality_rules.py):
--   negative_stock       quantity_on_hand is below zero
--   null_required_field  a NULL stock level, reorder point or updated_at
--   out_of_range         product_id below 1, a negative reorder point
--   orphan_product       stock of a product that curated.products does not hold
-- One row per (product, rule broken).

with latest as (

    {{ latest_live_versions('inventory', ['product_id']) }}

),

final as (

    {{ rule_violations('latest', ['product_id'], [
        {'rule': 'negative_stock', 'when': 'quantity_on_hand < 0',
         'shown': "'quantity_on_hand=' || cast(quantity_on_hand as varchar)"},
        required('quantity_on_hand'),
        required('reorder_point'),
        required('updated_at'),
        in_range('product_id', 'product_id >= 1'),
        in_range('reorder_point', 'reorder_point >= 0'),
        references('orphan_product', 'product_id', 'select product_id from ' ~ ref('products'), 'product_id'),
    ]) }}

)

select * from final
