{{ config(schema='quarantine', alias='customers') }}

-- Customers whose latest live version breaks a quality rule (orchestration/source/quality_rules.py):
--   malformed_email      email is present but does not match EMAIL_PATTERN
--   null_required_field  email is NULL
-- One row per (customer, rule broken).

with latest as (

    {{ latest_live_versions('customers', ['customer_id']) }}

),

malformed_email as (

    select
        customer_id,
        'malformed_email' as rule,
        'email=' || email as offending_values,
        _extracted_at
    from latest
    where email is not null
      and not {{ regex_full_match('email', var('email_pattern')) }}

),

null_required_field as (

    select
        customer_id,
        'null_required_field' as rule,
        'email=NULL' as offending_values,
        _extracted_at
    from latest
    where email is null

),

final as (

    select * from malformed_email
    union all
    select * from null_required_field

)

select * from final
