{{ config(schema='quarantine', alias='fx_rates') }}

-- Exchange rates whose latest live version breaks a quality rule (orchestration/contract/quality_rules.py):
--   null_required_field  a NULL rate_date (a zero date: then the key itself is NULL), rate or updated_at
--   invalid_value        a currency that is not an ISO 4217 code
--   out_of_range         a rate that is not positive, or 100,000 USD per unit or more (no currency
--                        is worth that; converted amounts would overflow the USD columns)
-- One row per (rate, rule broken).

with latest as (

    {{ latest_live_versions('fx_rates', ['rate_date', 'currency']) }}

),

final as (

    {{ rule_violations('latest', ['rate_date', 'currency'], [
        required('rate_date'),
        required('currency'),
        required('usd_per_unit'),
        required('updated_at'),
        matches('currency', var('currency_code_pattern')),
        in_range('usd_per_unit', 'usd_per_unit > 0 and usd_per_unit < 100000'),
    ]) }}

)

select * from final
