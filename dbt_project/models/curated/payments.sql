-- Payment attempts. card_number holds the full PAN at the source: the PCI risk Shoplake contains.
-- Fraud surfaces weeks later as status chargeback.
-- The latest live version of every payments key, minus the keys quarantined by a quality rule.

with latest as (

    {{ latest_live_versions('payments', ['payment_id']) }}

),

valid as (

    select *
    from latest
    where {{ not_quarantined('latest', ref('quarantine_payments'), ['payment_id']) }}

),

final as (

    select
        cast(payment_id as bigint) as payment_id,
        cast(order_id as bigint) as order_id,
        cast(method as varchar) as method,
        cast(card_bin as varchar) as card_bin,
        cast(card_last4 as varchar) as card_last4,
        cast(card_token as varchar) as card_token,
        cast(card_country as varchar) as card_country,
        cast(ip_country as varchar) as ip_country,
        cast(device_type as varchar) as device_type,
        cast(amount as decimal(12, 2)) as amount,
        cast(currency as varchar) as currency,
        cast(status as varchar) as status,
        cast(paid_at as timestamp) as paid_at,
        cast(chargeback_at as timestamp) as chargeback_at,
        cast(updated_at as timestamp) as updated_at,
        _extracted_at
    from valid

)

select * from final
