{{
    config(
        materialized='incremental',
        unique_key=['session_date', 'channel'],
        incremental_strategy='delete+insert',
        on_schema_change='fail',
        pre_hook="{% if is_incremental() %}delete from {{ this }} where session_date in ({{ session_dates_changed_since(incremental_watermark()) }}){% endif %}"
    )
}}

-- The shopping funnel by day and channel, counted in sessions. A session reaches a step when it
-- has an event of that step or of any later one (a purchase implies the checkout before it), so
-- each step count is at most the one before and every step rate is between 0 and 1.
-- Incremental (macros/incremental.sql): a build rebuilds only the days of the sessions whose events
-- changed since the previous build (new events, and abandoned carts the shop deletes after 30
-- days); the pre-hook clears those days first, so a (day, channel) left without sessions goes too.

{%- set since = incremental_watermark() %}

with

{% if is_incremental() %}
dates_to_rebuild as (

    {{ session_dates_changed_since(since) }}

),

-- a session that starts on one of those days has an event on it
candidate_sessions as (

    select distinct session_id
    from {{ ref('web_events') }}
    where cast(occurred_at as date) in (select dates_to_rebuild.session_date from dates_to_rebuild)

),
{% endif %}

events as (

    select * from {{ ref('web_events') }}
    {% if is_incremental() %}
    where session_id in (select candidate_sessions.session_id from candidate_sessions)
    {% endif %}

),

steps as (

    select
        session_id,
        min(occurred_at) as started_at,
        max(_extracted_at) as extracted_at,
        max(
            case when event_type in ('product_view', 'add_to_cart', 'checkout', 'purchase') then 1 else 0 end
        ) as reached_product_view,
        max(case when event_type in ('add_to_cart', 'checkout', 'purchase') then 1 else 0 end) as reached_add_to_cart,
        max(case when event_type in ('checkout', 'purchase') then 1 else 0 end) as reached_checkout,
        max(case when event_type = 'purchase' then 1 else 0 end) as reached_purchase
    from events
    group by session_id

),

-- a session belongs to the channel of its first event
first_events as (

    select
        session_id,
        channel,
        row_number() over (partition by session_id order by occurred_at, event_id) as event_number
    from events

),

sessions as (

    select
        steps.*,
        cast(steps.started_at as date) as session_date,
        first_events.channel
    from steps
    inner join first_events
        on first_events.session_id = steps.session_id
            and first_events.event_number = 1
    {% if is_incremental() %}
    where cast(steps.started_at as date) in (select dates_to_rebuild.session_date from dates_to_rebuild)
    {% endif %}

),

aggregated as (

    select
        session_date,
        channel,
        count(*) as sessions,
        sum(reached_product_view) as product_view_sessions,
        sum(reached_add_to_cart) as add_to_cart_sessions,
        sum(reached_checkout) as checkout_sessions,
        sum(reached_purchase) as purchase_sessions,
        max(extracted_at) as extracted_at
    from sessions
    group by session_date, channel

),

final as (

    select
        session_date,
        channel,
        cast(sessions as bigint) as sessions,
        cast(product_view_sessions as bigint) as product_view_sessions,
        cast(add_to_cart_sessions as bigint) as add_to_cart_sessions,
        cast(checkout_sessions as bigint) as checkout_sessions,
        cast(purchase_sessions as bigint) as purchase_sessions,
        cast(product_view_sessions as double) / sessions as product_view_rate,
        cast(add_to_cart_sessions as double) / nullif(product_view_sessions, 0) as add_to_cart_rate,
        cast(checkout_sessions as double) / nullif(add_to_cart_sessions, 0) as checkout_rate,
        cast(purchase_sessions as double) / nullif(checkout_sessions, 0) as purchase_rate,
        cast(purchase_sessions as double) / sessions as conversion_rate,
        extracted_at as _extracted_at
    from aggregated

)

select * from final
