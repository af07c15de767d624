{{ config(schema='quarantine', alias='web_events') }}

-- Web events whose latest live version breaks a quality rule (orchestration/source/quality_rules.py):
--   duplicate_event  same session_id, event_type, product_id (NULLs equal) and occurred_at as an
--                    event with a smaller event_id (a client retry): the first one stays curated,
--                    every later copy is quarantined.

with latest as (

    {{ latest_live_versions('web_events', ['event_id']) }}

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
