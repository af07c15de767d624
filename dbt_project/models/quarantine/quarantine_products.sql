{{ config(schema='quarantine', alias='products') }}

-- Products whose latest live version breaks a quality rule (orchestration/contract/quality_rules.py):
--   null_required_field  a NULL sku, name, category, price, cost, flag or timestamp
--   invalid_value        an empty sku or name
--   out_of_range         product_id or category_id below 1, a list price that is not positive (the
--                        price index divides by it), a negative unit cost
--   orphan_category      category_id names no category of curated.categories
-- One row per (product, rule broken).

with latest as (

    {{ latest_live_versions('products', ['product_id']) }}

),

final as (

    {{ rule_violations('latest', ['product_id'], [
        required('sku'),
        required('name'),
        required('category_id'),
        required('list_price_usd'),
        required('unit_cost_usd'),
        required('is_active'),
        required('created_at'),
        required('updated_at'),
        not_blank('sku'),
        not_blank('name'),
        in_range('product_id', 'product_id >= 1'),
        in_range('category_id', 'category_id >= 1'),
        in_range('list_price_usd', 'list_price_usd > 0'),
        in_range('unit_cost_usd', 'unit_cost_usd >= 0'),
        references('orphan_category', 'category_id', 'select category_id from ' ~ ref('categories'), 'category_id'),
    ]) }}

)

select * from final
