-- Planned promotions: site-wide or for one category. Known in advance, so forecasts may use them.
-- The latest live version of every promotions key, minus the keys quarantined by a quality rule.

with latest as (

    {{ latest_live_versions('promotions', ['promotion_id']) }}

),

valid as (

    select *
    from latest
    where {{ not_quarantined('latest', ref('quarantine_promotions'), ['promotion_id']) }}

),

final as (

    select
        cast(promotion_id as integer) as promotion_id,
        cast(promo_code as varchar) as promo_code,
        cast(category_id as integer) as category_id,
        cast(discount_pct as decimal(5, 2)) as discount_pct,
        cast(starts_on as date) as starts_on,
        cast(ends_on as date) as ends_on,
        cast(updated_at as timestamp) as updated_at,
        _extracted_at
    from valid

)

select * from final
