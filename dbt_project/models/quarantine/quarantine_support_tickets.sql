{{ config(schema='quarantine', alias='support_tickets') }}

-- Support tickets whose latest live version breaks a quality rule (orchestration/contract/quality_rules.py):
--   orphan_customer      customer_id names no customer live at the source (a ticket of a
--                        quarantined customer stays curated)
--   orphan_order         order_id is given and names no order live at the source
--   null_required_field  a NULL customer, topic, body, status or time (a zero date arrives as NULL)
--   invalid_value        topic or status outside its vocabulary ('' included)
--   out_of_range         ticket_id, customer_id or order_id below 1, a rating outside 1-5
--   inconsistent_fields  resolved without a resolution time (or the reverse), resolved before it was
--                        opened, rated before it was resolved
-- One row per (ticket, rule broken).

with latest as (

    {{ latest_live_versions('support_tickets', ['ticket_id']) }}

),

final as (

    {{ rule_violations('latest', ['ticket_id'], [
        required('customer_id'),
        required('topic'),
        required('body'),
        required('status'),
        required('created_at'),
        required('updated_at'),
        one_of('topic', var('vocabularies')['ticket_topic']),
        one_of('status', var('vocabularies')['ticket_status']),
        in_range('ticket_id', 'ticket_id >= 1'),
        in_range('customer_id', 'customer_id >= 1'),
        in_range('order_id', 'order_id >= 1'),
        in_range('satisfaction', 'satisfaction between 1 and 5'),
        consistent("(resolved_at is not null) = (status = 'resolved')", ['status', 'resolved_at']),
        consistent('resolved_at >= created_at', ['created_at', 'resolved_at']),
        consistent("status = 'resolved' or satisfaction is null", ['status', 'satisfaction']),
        references('orphan_customer', 'customer_id', live_keys('customers', 'customer_id'), 'customer_id'),
        references('orphan_order', 'order_id', live_keys('orders', 'order_id'), 'order_id'),
    ]) }}

)

select * from final
