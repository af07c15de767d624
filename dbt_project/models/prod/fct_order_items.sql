{{
    config(
        materialized='incremental',
        unique_key='order_item_id',
        incremental_strategy='delete+insert',
        on_schema_change='fail',
        post_hook="{{ delete_rows_missing_from(
            'select order_items.order_item_id from ' ~ ref('order_items') ~ ' as order_items'
            ~ ' inner join ' ~ ref('fct_orders') ~ ' as orders on orders.order_id = order_items.order_id'
            ~ ' inner join ' ~ ref('products') ~ ' as products on products.product_id = order_items.product_id',
            'order_item_id') }}"
    )
}}

-- One row per curated order line whose order is in fct_orders (lines of a quarantined order have
-- no date, channel or exchange rate to be reported with), with its product category, its revenue
-- in local currency and in USD at the order's rate, and what was returned of it.
-- Incremental (macros/incremental.sql): a build recomputes the lines whose raw row, order, order's
-- exchange rate, returns or product changed since the previous build, adds lines it lacks and
-- drops the ones that left (deleted lines, lines of orders that left fct_orders).
-- depends_on: {{ ref('orders') }}

{%- set since = incremental_watermark() %}

with

{% if is_incremental() %}
changed_orders as (

    {{ changed_since('orders', 'order_id', 'order_id', since) }}
    union
    {{ rows_with_fx_changed_since(
        ref('orders'), 'order_id', 'currency', 'cast(rows_to_convert.ordered_at as date)', since
    ) }}

),

changed_items as (

    {{ changed_since('order_items', 'order_item_id', 'order_item_id', since) }}
    union
    select order_item_id
    from {{ ref('order_items') }}
    where order_id in (select changed_orders.order_id from changed_orders)
    union
    {{ changed_since('returns', 'return_id', 'order_item_id', since) }}
    union
    select order_item_id
    from {{ ref('order_items') }}
    where product_id in ({{ changed_since('products', 'product_id', 'product_id', since) }})
    union
    {{ keys_missing_from_this('select order_item_id from ' ~ ref('order_items'), 'order_item_id') }}

),
{% endif %}

order_items as (

    select * from {{ ref('order_items') }}
    {% if is_incremental() %}
    where order_item_id in (select changed_items.order_item_id from changed_items)
    {% endif %}

),

orders as (

    select * from {{ ref('fct_orders') }}

),

products as (

    select * from {{ ref('products') }}

),

returned as (

    select
        order_item_id,
        sum(quantity) as returned_units,
        sum(refund_amount) as refund_amount,
        max(_extracted_at) as returns_extracted_at
    from {{ ref('returns') }}
    {% if is_incremental() %}
    where order_item_id in (select changed_items.order_item_id from changed_items)
    {% endif %}
    group by order_item_id

),

lines as (

    select
        order_items.order_item_id,
        order_items.order_id,
        orders.customer_id,
        order_items.product_id,
        products.category_id,
        orders.ordered_at,
        orders.order_date,
        orders.status,
        orders.is_cancelled,
        orders.channel,
        orders.shipping_country,
        orders.region,
        orders.currency,
        order_items.quantity,
        order_items.unit_price,
        order_items.line_discount,
        -- widened first: INT * DECIMAL(12,2) is typed DECIMAL(18,2) and overflows on large lines
        cast(
            cast(order_items.quantity as hugeint) * order_items.unit_price - order_items.line_discount as decimal(18, 2)
        ) as line_revenue,
        orders.usd_per_unit,
        cast(coalesce(returned.returned_units, 0) as bigint) as returned_units,
        cast(coalesce(returned.refund_amount, 0) as decimal(18, 2)) as refund_amount,
        greatest(
            order_items._extracted_at, coalesce(returned.returns_extracted_at, order_items._extracted_at)
        ) as _extracted_at
    from order_items
    inner join orders
        on orders.order_id = order_items.order_id
    inner join products
        on products.product_id = order_items.product_id
    left join returned
        on returned.order_item_id = order_items.order_item_id

),

final as (

    select
        order_item_id,
        order_id,
        customer_id,
        product_id,
        category_id,
        ordered_at,
        order_date,
        status,
        is_cancelled,
        channel,
        shipping_country,
        region,
        currency,
        quantity,
        unit_price,
        line_discount,
        line_revenue,
        usd_per_unit,
        {{ to_usd('line_revenue', 'usd_per_unit') }} as line_revenue_usd,
        returned_units,
        refund_amount,
        {{ to_usd('refund_amount', 'usd_per_unit') }} as refund_usd,
        _extracted_at
    from lines

)

select * from final
