{{
    config(
        materialized='incremental',
        unique_key='payment_id',
        incremental_strategy='delete+insert',
        on_schema_change='fail',
        post_hook="{{ delete_rows_missing_from('select payment_id from ' ~ ref('payments'), 'payment_id') }}"
    )
}}

-- One row per curated payment attempt, with the card reduced to BIN, last four digits and keyed
-- token (the full number never reaches the lakehouse), its USD value at the rate of the payment
-- date and the signals fraud review looks at.
-- Incremental (macros/incremental.sql): a build recomputes the payments whose raw row, order or
-- exchange rate changed since the previous build, or whose order joined or left fct_orders, adds
-- payments it lacks and drops the ones that left curated.payments.

{%- set since = incremental_watermark() %}

with

{% if is_incremental() %}
changed_payments as (

    {{ changed_since('payments', 'payment_id', 'payment_id', since) }}
    union
    select payment_id
    from {{ ref('payments') }}
    where order_id in ({{ changed_since('orders', 'order_id', 'order_id', since) }})
    union
    {{ rows_with_fx_changed_since(
        ref('payments'), 'payment_id', 'currency', 'cast(rows_to_convert.paid_at as date)', since
    ) }}
    union
    -- the order left fct_orders (or came back) without a change of its own, e.g. its customer was quarantined
    select held.payment_id
    from {{ this }} as held
    left join {{ ref('fct_orders') }} as orders
        on orders.order_id = held.order_id
    where held.customer_id is distinct from orders.customer_id
    union
    {{ keys_missing_from_this('select payment_id from ' ~ ref('payments'), 'payment_id') }}

),
{% endif %}

payments as (

    select
        *,
        cast(paid_at as date) as paid_date
    from {{ ref('payments') }}
    {% if is_incremental() %}
    where payment_id in (select changed_payments.payment_id from changed_payments)
    {% endif %}

),

orders as (

    select * from {{ ref('fct_orders') }}

),

fx as (

    {{ fx_rate_periods() }}

),

final as (

    select
        payments.payment_id,
        payments.order_id,
        orders.customer_id,
        payments.method,
        payments.card_bin,
        payments.card_last4,
        payments.card_token,
        payments.card_country,
        payments.ip_country,
        payments.card_country is not null
        and payments.card_country <> payments.ip_country as is_card_ip_country_mismatch,
        payments.device_type,
        payments.amount,
        payments.currency,
        {{ usd_per_unit('payments.currency', 'fx') }} as usd_per_unit,
        {{ to_usd('payments.amount', usd_per_unit('payments.currency', 'fx')) }} as amount_usd,
        payments.status,
        payments.status = 'chargeback' as is_chargeback,
        payments.paid_at,
        payments.paid_date,
        payments.chargeback_at,
        {{ dbt.datediff('payments.paid_at', 'payments.chargeback_at', 'day') }} as days_to_chargeback,
        payments._extracted_at
    from payments
    left join orders
        on orders.order_id = payments.order_id
    left join fx
        on fx.currency = payments.currency
            and {{ fx_period_covers('fx', 'payments.paid_date') }}

)

select * from final
