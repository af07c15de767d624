-- Stock position per product: units on hand, the selling rate over the last 28 days and how many
-- days the stock lasts at that rate. "Today" is the latest order date in the data, so the model is
-- deterministic; the stock itself is the latest extracted inventory row.

with inventory as (

    select * from {{ ref('inventory') }}

),

products as (

    select * from {{ ref('products') }}

),

as_of as (

    select max(order_date) as as_of_date
    from {{ ref('fct_orders') }}

),

recent_sales as (

    select
        lines.product_id,
        sum(lines.quantity) as units_sold_28d
    from {{ ref('fct_order_items') }} as lines
    cross join as_of
    where not lines.is_cancelled
        and lines.order_date > cast({{ dbt.dateadd('day', -28, 'as_of.as_of_date') }} as date)
        and lines.order_date <= as_of.as_of_date
    group by lines.product_id

),

rates as (

    select
        inventory.product_id,
        products.sku,
        products.name,
        products.category_id,
        products.is_active,
        inventory.quantity_on_hand,
        inventory.reorder_point,
        inventory.last_restocked_at,
        as_of.as_of_date,
        coalesce(recent_sales.units_sold_28d, 0) as units_sold_28d,
        cast(coalesce(recent_sales.units_sold_28d, 0) as double) / 28 as avg_daily_units_28d
    from inventory
    cross join as_of
    left join products
        on products.product_id = inventory.product_id
    left join recent_sales
        on recent_sales.product_id = inventory.product_id

),

final as (

    select
        product_id,
        sku,
        name,
        category_id,
        is_active,
        quantity_on_hand,
        reorder_point,
        last_restocked_at,
        as_of_date,
        cast(units_sold_28d as bigint) as units_sold_28d,
        avg_daily_units_28d,
        case
            when avg_daily_units_28d > 0 then quantity_on_hand / avg_daily_units_28d
        end as days_of_cover,
        -- fewer than 14 days of cover, decided in integers: qoh / (units / 28) < 14 <=> 2 * qoh < units.
        -- In floating point a product exactly at 14 days (18 on hand, 36 sold) lands on either side.
        quantity_on_hand < reorder_point
        or 2 * cast(quantity_on_hand as bigint) < units_sold_28d as low_stock
    from rates

)

select * from final
