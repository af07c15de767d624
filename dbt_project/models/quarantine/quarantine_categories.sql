{{ config(schema='quarantine', alias='categories') }}

-- Categories whose latest live version breaks a quality rule (orchestration/contract/quality_rules.py):
--   null_required_field  name, department or updated_at is NULL
--   invalid_value        an empty name or department
--   out_of_range         category_id below 1
-- One row per (category, rule broken).

with latest as (

    {{ latest_live_versions('categories', ['category_id']) }}

),

final as (

    {{ rule_violations('latest', ['category_id'], [
        required('name'),
        required('department'),
        required('updated_at'),
        in_range('category_id', 'category_id >= 1'),
        not_blank('name'),
        not_blank('department'),
    ]) }}

)

select * from final
