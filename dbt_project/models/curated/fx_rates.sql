-- Daily exchange rates: units of USD per one unit of currency.
-- The latest live version of every fx_rates key, minus the keys quarantined by a quality rule.

with latest as (

    {{ latest_live_versions('fx_rates', ['rate_date', 'currency']) }}

),

valid as (

    select *
    from latest
    where {{ not_quarantined('latest', ref('quarantine_fx_rates'), ['rate_date', 'currency']) }}

),

final as (

    select
        cast(rate_date as date) as rate_date,
        cast(currency as varchar) as currency,
        cast(usd_per_unit as decimal(18, 8)) as usd_per_unit,
        cast(updated_at as timestamp) as updated_at,
        _extracted_at
    from valid

)

select * from final
