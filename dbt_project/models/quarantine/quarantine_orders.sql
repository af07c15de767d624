{{ config(schema='quarantine', alias='orders') }}

-- Orders whose latest live version breaks a quality rule (orchestration/contract/quality_rules.py):
--   null_required_field   a NULL customer_id, ordered_at (a zero date arrives as NULL), amount, code
--                         or updated_at (every NULL one listed)
--   orphan_customer       customer_id names no customer of curated.customers
--   invalid_value         status or channel outside its vocabulary ('' included), a currency or
--                         shipping country that is not an ISO code
--   out_of_range          order_id below 1, a negative amount
--   inconsistent_fields   a discount larger than the subtotal
-- and, for orders with a customer and a date (the business rules of the shop platforms):
--   order_total_mismatch  total <> subtotal - discount + shipping_fee, or subtotal <> the sum of
--                         quantity * unit_price - line_discount over the order's curated lines
--   missing_fx_rate       no curated.fx_rates row for the currency on the order date (USD needs none)
-- One row per (order, rule broken).

with latest as (

    {{ latest_live_versions('orders', ['order_id']) }}

),

customers as (

    select customer_id from {{ ref('customers') }}

),

structural as (

    {{ rule_violations('latest', ['order_id'], [
        required('customer_id'),
        required('ordered_at'),
        required('status'),
        required('channel'),
        required('currency'),
        required('shipping_country'),
        required('subtotal'),
        required('discount'),
        required('shipping_fee'),
        required('total'),
        required('updated_at'),
        {'rule': 'orphan_customer',
         'when': 'customer_id is not null and customer_id not in (select customer_id from customers)',
         'shown': "'customer_id=' || cast(customer_id as varchar)"},
        in_range('order_id', 'order_id >= 1'),
        one_of('status', var('vocabularies')['order_status']),
        one_of('channel', var('vocabularies')['order_channel']),
        matches('currency', var('currency_code_pattern')),
        matches('shipping_country', var('country_code_pattern')),
        in_range('subtotal', 'subtotal >= 0'),
        in_range('discount', 'discount >= 0'),
        in_range('shipping_fee', 'shipping_fee >= 0'),
        in_range('total', 'total >= 0'),
        consistent('discount <= subtotal', ['discount', 'subtotal']),
    ]) }}

),

-- the business rules only judge orders that are otherwise whole: an order without a customer or a
-- date is quarantined for that alone
complete_orders as (

    select latest.*
    from latest
    inner join customers
        on customers.customer_id = latest.customer_id
    where latest.ordered_at is not null

),

line_totals as (

    select
        order_id,
        sum(cast(quantity as hugeint) * unit_price - line_discount) as lines_subtotal
    from {{ ref('order_items') }}
    group by order_id

),

order_total_mismatch as (

    select
        complete_orders.order_id,
        'order_total_mismatch' as rule,
        'total=' || coalesce(cast(complete_orders.total as varchar), 'NULL')
        || ', subtotal - discount + shipping_fee='
        || coalesce(
            cast(complete_orders.subtotal - complete_orders.discount + complete_orders.shipping_fee as varchar), 'NULL'
        )
        || ', subtotal=' || coalesce(cast(complete_orders.subtotal as varchar), 'NULL')
        || ', sum of lines=' || cast(coalesce(line_totals.lines_subtotal, 0) as varchar) as offending_values,
        complete_orders._extracted_at
    from complete_orders
    left join line_totals
        on line_totals.order_id = complete_orders.order_id
    where
        complete_orders.total
        is distinct from complete_orders.subtotal - complete_orders.discount + complete_orders.shipping_fee
        or complete_orders.subtotal is distinct from coalesce(line_totals.lines_subtotal, 0)

),

missing_fx_rate as (

    select
        complete_orders.order_id,
        'missing_fx_rate' as rule,
        'currency=' || coalesce(complete_orders.currency, 'NULL')
        || ', order_date=' || cast(cast(complete_orders.ordered_at as date) as varchar) as offending_values,
        complete_orders._extracted_at
    from complete_orders
    where complete_orders.currency is distinct from 'USD'
        and not exists (
            select 1
            from {{ ref('fx_rates') }} as fx
            where fx.currency = complete_orders.currency
                and fx.rate_date = cast(complete_orders.ordered_at as date)
        )

),

final as (

    select * from structural
    union all
    select * from order_total_mismatch
    union all
    select * from missing_fx_rate

)

select * from final
