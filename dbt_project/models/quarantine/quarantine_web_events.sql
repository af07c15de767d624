{{
    config(
        schema='quarantine',
        alias='web_events',
        materialized='incremental',
        incremental_strategy='append',
        on_schema_change='fail',
        pre_hook="{% if is_incremental() %}delete from {{ this }} where event_id in ({{ web_events_to_rebuild(web_events_watermark()) }}){% endif %}"
    )
}}

-- Incremental like curated.web_events: only the events of the sessions changed since its last build.
-- Web events whose latest live version breaks a quality rule (orchestration/contract/quality_rules.py):
--   duplicate_event  same session_id, event_type, product_id (NULLs equal) and occurred_at as an
--                    event with a smaller event_id (a client retry): the first one stays curated,
--                    every later copy is quarantined.
--   null_required_field  a NULL session, type, channel, source, device, country or time (a zero date
--                        arrives as NULL)
--   invalid_value        event_type, channel, traffic_source or device_type outside its vocabulary
--                        ('' included), a country that is not an ISO code, an empty session_id
--   out_of_range         event_id, customer_id, product_id or order_id below 1
--   inconsistent_fields  a product event without its product; a purchase without its order, or an
--                        order on another event
--   orphan_customer / orphan_product / orphan_order
--                        a customer, product or order that no live source row has (a purchase whose
--                        order was deleted since, say)
-- One row per (event, rule broken).

with latest as (

    {%- if is_incremental() %}
    {{ latest_live_versions('web_events', ['event_id'], only_keys=web_events_to_rebuild(web_events_watermark())) }}
    {%- else %}
    {{ latest_live_versions('web_events', ['event_id']) }}
    {%- endif %}

),

-- partition by treats NULL product_ids as equal, which is the null-safe comparison the rule needs
numbered as (

    select
        event_id,
        _extracted_at,
        row_number() over (
            partition by session_id, event_type, product_id, occurred_at
            order by event_id
        ) as copy_number,
        min(event_id) over (
            partition by session_id, event_type, product_id, occurred_at
        ) as first_event_id
    from latest

),

duplicate_event as (

    select
        event_id,
        'duplicate_event' as rule,
        'duplicate_of_event_id=' || cast(first_event_id as varchar) as offending_values,
        _extracted_at
    from numbered
    where copy_number > 1

),

structural as (

    {{ rule_violations('latest', ['event_id'], [
        required('session_id'),
        required('event_type'),
        required('channel'),
        required('traffic_source'),
        required('device_type'),
        required('country'),
        required('occurred_at'),
        required('updated_at'),
        not_blank('session_id'),
        one_of('event_type', var('vocabularies')['event_type']),
        one_of('channel', var('vocabularies')['web_channel']),
        one_of('traffic_source', var('vocabularies')['traffic_source']),
        one_of('device_type', var('vocabularies')['device_type']),
        matches('country', var('country_code_pattern')),
        in_range('event_id', 'event_id >= 1'),
        in_range('customer_id', 'customer_id >= 1'),
        in_range('product_id', 'product_id >= 1'),
        in_range('order_id', 'order_id >= 1'),
        consistent("event_type not in ('product_view', 'add_to_cart') or product_id is not null", ['event_type', 'product_id']),
        consistent("(event_type = 'purchase') = (order_id is not null)", ['event_type', 'order_id']),
        references('orphan_customer', 'customer_id', live_keys('customers', 'customer_id'), 'customer_id'),
        references('orphan_product', 'product_id', live_keys('products', 'product_id'), 'product_id'),
        references('orphan_order', 'order_id', live_keys('orders', 'order_id'), 'order_id'),
    ]) }}

),

final as (

    select * from structural
    union all
    select * from duplicate_event

)

select * from final
