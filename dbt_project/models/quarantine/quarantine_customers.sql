{{ config(schema='quarantine', alias='customers') }}

-- Customers whose latest live version breaks a quality rule (orchestration/contract/quality_rules.py):
--   malformed_email      email is present but does not match EMAIL_PATTERN
--   null_required_field  email, created_at or updated_at is NULL (a zero date arrives as NULL)
--   invalid_value        acquisition_channel outside its vocabulary ('' included), a country that
--                        is not an ISO code
--   out_of_range         customer_id below 1
--   inconsistent_fields  updated before created
-- One row per (customer, rule broken), listing every offending value of that rule.

with latest as (

    {{ latest_live_versions('customers', ['customer_id']) }}

),

final as (

    {{ rule_violations('latest', ['customer_id'], [
        {'rule': 'malformed_email',
         'when': 'email is not null and not ' ~ regex_full_match('email', var('email_pattern')),
         'shown': "'email=' || email"},
        required('email'),
        required('city'),
        required('acquisition_channel'),
        required('marketing_opt_in'),
        required('created_at'),
        required('updated_at'),
        in_range('customer_id', 'customer_id >= 1'),
        one_of('acquisition_channel', var('vocabularies')['acquisition_channel']),
        matches('country', var('country_code_pattern')),
        consistent('updated_at >= created_at', ['created_at', 'updated_at']),
    ]) }}

)

select * from final
