-- Customer service tickets. body is free text: shoppers sometimes paste card numbers into it.
-- The latest live version of every support_tickets key, minus the keys quarantined by a quality rule.

with latest as (

    {{ latest_live_versions('support_tickets', ['ticket_id']) }}

),

valid as (

    select *
    from latest
    where {{ not_quarantined('latest', ref('quarantine_support_tickets'), ['ticket_id']) }}

),

final as (

    select
        cast(ticket_id as bigint) as ticket_id,
        cast(customer_id as bigint) as customer_id,
        cast(order_id as bigint) as order_id,
        cast(topic as varchar) as topic,
        cast(body as varchar) as body,
        cast(status as varchar) as status,
        cast(satisfaction as integer) as satisfaction,
        cast(created_at as timestamp) as created_at,
        cast(resolved_at as timestamp) as resolved_at,
        cast(updated_at as timestamp) as updated_at,
        _extracted_at
    from valid

)

select * from final
