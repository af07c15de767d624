{{ config(schema='quarantine', alias='order_items') }}

-- Order lines whose latest live version breaks a quality rule (orchestration/contract/quality_rules.py):
--   null_required_field    a NULL product_id, order_id, quantity, price, discount or updated_at
--   orphan_product         product_id names no product of curated.products
--   orphan_order           order_id names no order live at the source (a line of a quarantined
--                          order stays curated: it only loses its parent until the order is fixed)
--   non_positive_quantity  quantity is zero or negative
--   out_of_range           order_item_id or order_id below 1, a negative unit price (0.00 is a free
--                          item, which is legal) or line discount, or a line worth more than an order
--                          subtotal can hold (DECIMAL(12,2))
--   inconsistent_fields    a line discount larger than the line's value (judged only on a positive
--                          quantity and price: a line broken there is quarantined for that alone)
-- One row per (order line, rule broken).

{%- set line_value = 'cast(quantity as hugeint) * unit_price' %}

with latest as (

    {{ latest_live_versions('order_items', ['order_item_id']) }}

),

final as (

    {{ rule_violations('latest', ['order_item_id'], [
        required('product_id'),
        required('order_id'),
        required('quantity'),
        required('unit_price'),
        required('line_discount'),
        required('updated_at'),
        {'rule': 'orphan_product',
         'when': 'product_id is not null and product_id not in (select product_id from ' ~ ref('products') ~ ')',
         'shown': "'product_id=' || cast(product_id as varchar)"},
        references('orphan_order', 'order_id', live_keys('orders', 'order_id'), 'order_id'),
        {'rule': 'non_positive_quantity', 'when': 'quantity <= 0', 'shown': "'quantity=' || cast(quantity as varchar)"},
        in_range('order_item_id', 'order_item_id >= 1'),
        in_range('order_id', 'order_id >= 1'),
        in_range('unit_price', 'unit_price >= 0'),
        in_range('line_discount', 'line_discount >= 0'),
        {'rule': 'out_of_range', 'when': line_value ~ ' > 9999999999.99',
         'shown': shown_value('quantity') ~ " || ', ' || " ~ shown_value('unit_price')},
        consistent('quantity <= 0 or unit_price < 0 or line_discount <= ' ~ line_value, ['line_discount', 'quantity', 'unit_price']),
    ]) }}

)

select * from final
