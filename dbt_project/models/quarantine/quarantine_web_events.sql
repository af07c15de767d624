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
-- Web events whose latest live version breaks a quality rule (orchestration/source/quality_rules.py):
--   duplicate_event  same session_id, event_type, product_id (NULLs equal) and occurred_at as an
--                    event with a smaller event_id (a client retry): the first one stays curated,
--                    every later copy is quarantined.

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

final as (

    select * from duplicate_event

)

select * from final
