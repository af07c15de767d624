{{ config(schema='quarantine', alias='returns') }}

-- Returns whose latest live version breaks a quality rule (orchestration/source/quality_rules.py):
--   return_exceeds_purchase  the returns of an order line, in the order they happened
--                            (returned_at, then return_id), add up to more units than the line
--                            bought: the return that crosses the bought quantity and every later
--                            one are quarantined, the ones before it stay curated
-- One row per (return, rule broken).

with latest as (

    {{ latest_live_versions('returns', ['return_id']) }}

),

lines as (

    select order_item_id, quantity
    from ({{ latest_live_versions('order_items', ['order_item_id']) }}) as latest_lines

),

running as (

    select
        latest.return_id,
        latest._extracted_at,
        lines.quantity as bought,
        sum(latest.quantity) over (
            partition by latest.order_item_id
            order by latest.returned_at, latest.return_id
            rows between unbounded preceding and current row
        ) as returned_so_far
    from latest
    inner join lines
        on lines.order_item_id = latest.order_item_id

),

return_exceeds_purchase as (

    select
        return_id,
        'return_exceeds_purchase' as rule,
        'returned_so_far=' || cast(returned_so_far as varchar) || ', bought=' || cast(bought as varchar) as offending_values,
        _extracted_at
    from running
    where returned_so_far > bought

),

final as (

    select * from return_exceeds_purchase

)

select * from final
