-- Returned units of an order line, with the refund in the order currency.
-- The latest live version of every returns key, minus the keys quarantined by a quality rule.

with latest as (

    {{ latest_live_versions('returns', ['return_id']) }}

),

valid as (

    select *
    from latest
    where {{ not_quarantined('latest', ref('quarantine_returns'), ['return_id']) }}

),

final as (

    select
        cast(return_id as bigint) as return_id,
        cast(order_item_id as bigint) as order_item_id,
        cast(quantity as integer) as quantity,
        cast(reason as varchar) as reason,
        cast(refund_amount as decimal(12, 2)) as refund_amount,
        cast(returned_at as timestamp) as returned_at,
        cast(updated_at as timestamp) as updated_at,
        _extracted_at
    from valid

)

select * from final
