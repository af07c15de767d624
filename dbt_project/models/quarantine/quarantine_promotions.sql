{{ config(schema='quarantine', alias='promotions') }}

-- Promotions whose latest live version breaks a quality rule (orchestration/contract/quality_rules.py):
--   null_required_field  a NULL code, discount, start, end or updated_at (a zero date arrives as NULL)
--   invalid_value        an empty promo_code
--   out_of_range         promotion_id or category_id below 1, a discount outside (0, 100) percent
--   inconsistent_fields  ends before it starts
--   orphan_category      category_id names no category of curated.categories
-- One row per (promotion, rule broken).

with latest as (

    {{ latest_live_versions('promotions', ['promotion_id']) }}

),

final as (

    {{ rule_violations('latest', ['promotion_id'], [
        required('promo_code'),
        required('discount_pct'),
        required('starts_on'),
        required('ends_on'),
        required('updated_at'),
        not_blank('promo_code'),
        in_range('promotion_id', 'promotion_id >= 1'),
        in_range('category_id', 'category_id >= 1'),
        in_range('discount_pct', 'discount_pct > 0 and discount_pct < 100'),
        consistent('ends_on >= starts_on', ['starts_on', 'ends_on']),
        references('orphan_category', 'category_id', 'select category_id from ' ~ ref('categories'), 'category_id'),
    ]) }}

)

select * from final
