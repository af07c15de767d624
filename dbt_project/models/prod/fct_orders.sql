{{
    config(
        materialized='incremental',
        unique_key='order_id',
        incremental_strategy='delete+insert',
        on_schema_change='fail',
        post_hook="{{ delete_rows_missing_from('select order_id from ' ~ ref('orders'), 'order_id') }}"
    )
}}

-- One row per curated order, with its region, its USD value at the order date's exchange rate and
-- the size of its basket.
-- Incremental (macros/incremental.sql): a build recomputes the orders whose raw row, lines or
-- exchange rate changed since the previous build, adds curated orders it lacks and drops the ones
-- that left curated.orders (erased, deleted or quarantined).

{%- set since = incremental_watermark() %}

with

{% if is_incremental() %}
changed_orders as (

    {{ changed_since('orders', 'order_id', 'order_id', since) }}
    union
    {{ changed_since('order_items', 'order_item_id', 'order_id', since) }}
    union
    {{ rows_with_fx_changed_since(
        ref('orders'), 'order_id', 'currency', 'cast(rows_to_convert.ordered_at as date)', since
    ) }}
    union
    {{ keys_missing_from_this('select order_id from ' ~ ref('orders'), 'order_id') }}

),
{% endif %}

orders as (

    select
        *,
        cast(ordered_at as date) as order_date
    from {{ ref('orders') }}
    {% if is_incremental() %}
    where order_id in (select changed_orders.order_id from changed_orders)
    {% endif %}

),

basket as (

    select
        order_id,
        count(*) as item_count,
        sum(quantity) as units,
        max(_extracted_at) as lines_extracted_at
    from {{ ref('order_items') }}
    {% if is_incremental() %}
    where order_id in (select changed_orders.order_id from changed_orders)
    {% endif %}
    group by order_id

),

countries as (

    select * from {{ ref('countries') }}

),

fx as (

    {{ fx_rate_periods() }}

),

final as (

    select
        orders.order_id,
        orders.customer_id,
        orders.ordered_at,
        orders.order_date,
        orders.status,
        orders.channel,
        orders.currency,
        orders.shipping_country,
        coalesce(countries.region, 'unknown') as region,
        orders.promo_code,
        orders.subtotal,
        orders.discount,
        orders.shipping_fee,
        orders.total,
        {{ usd_per_unit('orders.currency', 'fx') }} as usd_per_unit,
        {{ to_usd('orders.total', usd_per_unit('orders.currency', 'fx')) }} as total_usd,
        cast(coalesce(basket.item_count, 0) as bigint) as item_count,
        cast(coalesce(basket.units, 0) as bigint) as units,
        orders.status = 'cancelled' as is_cancelled,
        greatest(orders._extracted_at, coalesce(basket.lines_extracted_at, orders._extracted_at)) as _extracted_at
    from orders
    left join basket
        on basket.order_id = orders.order_id
    left join countries
        on countries.country = orders.shipping_country
    left join fx
        on fx.currency = orders.currency
            and {{ fx_period_covers('fx', 'orders.order_date') }}

)

select * from final
