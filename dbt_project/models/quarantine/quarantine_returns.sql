{{ config(schema='quarantine', alias='returns') }}

-- Returns whose latest live version breaks a quality rule (orchestration/contract/quality_rules.py):
--   return_exceeds_purchase  the returns of an order line, in the order they happened
--                            (returned_at, then return_id), add up to more units than the line
--                            bought: the return that crosses the bought quantity and every later
--                            one are quarantined, the ones before it stay curated (a return of no
--                            or negative units counts as none)
--   null_required_field      a NULL line, quantity, reason, refund or time (a zero date arrives as NULL)
--   non_positive_quantity    quantity is zero or negative
--   invalid_value            reason outside its vocabulary ('' included)
--   out_of_range             return_id or order_item_id below 1, a negative refund
--   orphan_order_item        order_item_id names no order line live at the source
-- One row per (return, rule broken).

with latest as (

    {{ latest_live_versions('returns', ['return_id']) }}

),

lines as (

    select
        order_item_id,
        quantity
    from ({{ latest_live_versions('order_items', ['order_item_id']) }}) as latest_lines

),

running as (

    select
        latest.return_id,
        latest._extracted_at,
        lines.quantity as bought,
        sum(case when latest.quantity > 0 then cast(latest.quantity as bigint) else 0 end) over (
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
        'returned_so_far=' || cast(returned_so_far as varchar)
        || ', bought=' || cast(bought as varchar) as offending_values,
        _extracted_at
    from running
    where returned_so_far > bought

),

structural as (

    {{ rule_violations('latest', ['return_id'], [
        required('order_item_id'),
        required('quantity'),
        required('reason'),
        required('refund_amount'),
        required('returned_at'),
        required('updated_at'),
        {'rule': 'non_positive_quantity', 'when': 'quantity <= 0', 'shown': "'quantity=' || cast(quantity as varchar)"},
        one_of('reason', var('vocabularies')['return_reason']),
        in_range('return_id', 'return_id >= 1'),
        in_range('order_item_id', 'order_item_id >= 1'),
        in_range('refund_amount', 'refund_amount >= 0'),
        references('orphan_order_item', 'order_item_id', 'select order_item_id from lines', 'order_item_id'),
    ]) }}

),

final as (

    select * from return_exceeds_purchase
    union all
    select * from structural

)

select * from final
