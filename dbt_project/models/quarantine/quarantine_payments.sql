{{ config(schema='quarantine', alias='payments') }}

-- Payments whose latest live version breaks a quality rule (orchestration/contract/quality_rules.py):
--   payment_amount_mismatch  a payment that moved money (any status but failed) differs from its
--                            order's total or currency (the order's latest live version, quarantined
--                            or not: the payment is judged against what the shop recorded)
--   missing_fx_rate          no curated.fx_rates row for the currency on the payment date (USD needs none)
--   null_required_field      a NULL order, method, country, device, amount, currency, status or time
--                            (a zero date arrives as NULL)
--   invalid_value            method, device_type or status outside its vocabulary ('' included), a
--                            country or currency that is not an ISO code, card details that are not
--                            a BIN of 6-8 digits and 4 last digits
--   out_of_range             payment_id or order_id below 1, a negative amount
--   inconsistent_fields      a card payment without its card details, or card details on another
--                            method; a chargeback without its date (or the reverse), or dated before
--                            the payment
--   orphan_order             order_id names no order live at the source
-- One row per (payment, rule broken).

with latest as (

    {{ latest_live_versions('payments', ['payment_id']) }}

),

orders as (

    select
        order_id,
        total,
        currency
    from ({{ latest_live_versions('orders', ['order_id']) }}) as latest_orders

),

payment_amount_mismatch as (

    select
        latest.payment_id,
        'payment_amount_mismatch' as rule,
        'amount=' || coalesce(cast(latest.amount as varchar), 'NULL') || ' ' || coalesce(latest.currency, 'NULL')
        || ', order total=' || coalesce(cast(orders.total as varchar), 'NULL')
        || ' ' || coalesce(orders.currency, 'NULL') as offending_values,
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

structural as (

    {{ rule_violations('latest', ['payment_id'], [
        required('order_id'),
        required('method'),
        required('ip_country'),
        required('device_type'),
        required('amount'),
        required('currency'),
        required('status'),
        required('paid_at'),
        required('updated_at'),
        one_of('method', var('vocabularies')['payment_method']),
        one_of('device_type', var('vocabularies')['device_type']),
        one_of('status', var('vocabularies')['payment_status']),
        matches('ip_country', var('country_code_pattern')),
        matches('card_country', var('country_code_pattern')),
        matches('currency', var('currency_code_pattern')),
        matches('card_bin', '^[0-9]{6,8}$'),
        matches('card_last4', '^[0-9]{4}$'),
        in_range('payment_id', 'payment_id >= 1'),
        in_range('order_id', 'order_id >= 1'),
        in_range('amount', 'amount >= 0'),
        consistent("(method = 'card') = (card_bin is not null and card_last4 is not null and card_token is not null and card_country is not null)"
                   ~ " and (method = 'card') = (card_bin is not null or card_last4 is not null or card_token is not null or card_country is not null)",
                   ['method', 'card_bin', 'card_country']),
        consistent("(chargeback_at is not null) = (status = 'chargeback')", ['status', 'chargeback_at']),
        consistent('chargeback_at >= paid_at', ['paid_at', 'chargeback_at']),
        references('orphan_order', 'order_id', 'select order_id from orders', 'order_id'),
    ]) }}

),

final as (

    select * from structural
    union all
    select * from payment_amount_mismatch
    union all
    select * from missing_fx_rate

)

select * from final
