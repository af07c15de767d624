{{ config(schema='quarantine', alias='orders') }}

-- Orders whose latest live version breaks a quality rule (orchestration/source/quality_rules.py):
--   null_required_field   customer_id or ordered_at is NULL (both listed when both are)
--   orphan_customer       customer_id names no customer of curated.customers
-- and, for orders that pass those two (the business rules of the shop platforms):
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

null_required_field as (

    select
        order_id,
        'null_required_field' as rule,
        case
            when customer_id is null and ordered_at is null then 'customer_id=NULL, ordered_at=NULL'
            when customer_id is null then 'customer_id=NULL'
            else 'ordered_at=NULL'
        end as offending_values,
        _extracted_at
    from latest
    where customer_id is null
       or ordered_at is null

),

orphan_customer as (

    select
        latest.order_id,
        'orphan_customer' as rule,
        'customer_id=' || cast(latest.customer_id as varchar) as offending_values,
        latest._extracted_at
    from latest
    where latest.customer_id is not null
      and not exists (
          select 1
          from customers
          where customers.customer_id = latest.customer_id
      )

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
        sum(quantity * unit_price - line_discount) as lines_subtotal
    from {{ ref('order_items') }}
    group by order_id

),

order_total_mismatch as (

    select
        complete_orders.order_id,
        'order_total_mismatch' as rule,
        'total=' || coalesce(cast(complete_orders.total as varchar), 'NULL')
            || ', subtotal - discount + shipping_fee='
            || coalesce(cast(complete_orders.subtotal - complete_orders.discount + complete_orders.shipping_fee as varchar), 'NULL')
            || ', subtotal=' || coalesce(cast(complete_orders.subtotal as varchar), 'NULL')
            || ', sum of lines=' || cast(coalesce(line_totals.lines_subtotal, 0) as varchar) as offending_values,
        complete_orders._extracted_at
    from complete_orders
    left join line_totals
        on line_totals.order_id = complete_orders.order_id
    where complete_orders.total is distinct from complete_orders.subtotal - complete_orders.discount + complete_orders.shipping_fee
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

    select * from null_required_field
    union all
    select * from orphan_customer
    union all
    select * from order_total_mismatch
    union all
    select * from missing_fx_rate

)

select * from final
