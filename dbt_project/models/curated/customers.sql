-- Registered shoppers. Erased on request (GDPR): the row and all their activity are hard deleted.
-- The latest live version of every customers key, minus the keys quarantined by a quality rule.
-- Pseudonymized: names and e-mail are dropped; the e-mail survives only as a keyed hash (the same
-- HMAC the extraction uses for card tokens, under SHOPLAKE_PII_KEY) so customers can still be
-- matched across systems by whoever holds the key; the birth date is coarsened to its year.

with latest as (

    {{ latest_live_versions('customers', ['customer_id']) }}

),

valid as (

    select *
    from latest
    where {{ not_quarantined('latest', ref('quarantine_customers'), ['customer_id']) }}

),

final as (

    select
        cast(customer_id as bigint) as customer_id,
        pseudonymize(lower(trim(cast(email as varchar)))) as email_hash,
        cast(country as varchar) as country,
        cast(city as varchar) as city,
        cast(acquisition_channel as varchar) as acquisition_channel,
        cast(marketing_opt_in as boolean) as marketing_opt_in,
        -- legacy rows may carry the zero date, and a typing slip a year like 9999: an optional
        -- field, so an implausible birth date becomes unknown instead of costing the customer
        case
            when extract(year from cast(birth_date as date))
                between 1900 and extract(year from cast(created_at as timestamp))
                then cast(extract(year from cast(birth_date as date)) as integer)
        end as birth_year,
        cast(created_at as timestamp) as created_at,
        cast(updated_at as timestamp) as updated_at,
        _extracted_at
    from valid

)

select * from final
