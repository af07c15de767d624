-- Product categories, each with its own price level, seasonality and return rate.
-- The latest live version of every categories key, minus the keys quarantined by a quality rule.

with latest as (

    {{ latest_live_versions('categories', ['category_id']) }}

),

valid as (

    select *
    from latest
    where {{ not_quarantined('latest', ref('quarantine_categories'), ['category_id']) }}

),

final as (

    select
        cast(category_id as integer) as category_id,
        cast(name as varchar) as name,
        cast(department as varchar) as department,
        cast(updated_at as timestamp) as updated_at,
        _extracted_at
    from valid

)

select * from final
