{{ config(schema='quarantine', alias='payments') }}

-- Payments whose latest live version breaks a quality rule (orchestration/source/quality_rules.py):
--   payment_amount_mismatch  a payment that moved money (any status but failed) differs from its
--                            order's total or currency (the order's latest live version, quarantined
--                            or not: the payment is judged against what the shop recorded)
--   missing_fx_rate          no curated.fx_rates row for the currency on the payment date (USD needs none)
-- One row per (payment, rule broken).

with latest as (

    {{ latest_live_versions('payments', ['payment_id']) }}

),

orders as (

    select order_id, total, currency
    from ({{ latest_live_versions('orders', ['order_id']) }}) as latest_orders

),

payment_amount_mismatch as (

    select
        latest.payment_id,
        'payment_amount_mismatch' as rule,
        'amount=' || coalesce(cast(latest.amount as varchar), 'NULL') || ' ' || coalesce(latest.currency, 'NULL')
            || ', order total=' || coalesce(cast(orders.total as varchar), 'NULL') || ' ' || coalesce(orders.currency, 'NULL') as offending_values,
        latest._extracted_at
    from latest
    inner join orders
        on orders.order_id = latest.order_id
    where latest.status is distinct from 'failed'
      and (
          latest.amount is distinct from orders.total
          or latest.currency is distinct from orders.currency
      )

),

missing_fx_rate as (

    select
        payment_id,
        'missing_fx_rate' as rule,
        'currency=' || coalesce(currency, 'NULL')
            || ', payment_date=' || coalesce(cast(cast(paid_at as date) as varchar), 'NULL') as offending_values,
        _extracted_at
    from latest
    where currency is distinct from 'USD'
      and not exists (
          select 1
          from {{ ref('fx_rates') }} as fx
          where fx.currency = latest.currency
            and fx.rate_date = cast(latest.paid_at as date)
      )

),

final as (

    select * from payment_amount_mismatch
    union all
    select * from missing_fx_rate

)

select * from final
