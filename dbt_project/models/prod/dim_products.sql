-- One row per curated product with its category and how it sells: units, orders and USD revenue
-- of non-cancelled orders, and the share of sold units that came back.

with products as (

    select * from {{ ref('products') }}

),

categories as (

    select * from {{ ref('categories') }}

),

sales as (

    select
        product_id,
        count(distinct order_id) as orders,
        sum(quantity) as units_sold,
        sum(line_revenue_usd) as revenue_usd,
        sum(returned_units) as returned_units,
        sum(refund_usd) as refunds_usd
    from {{ ref('fct_order_items') }}
    where not is_cancelled
    group by product_id

),

final as (

    select
        products.product_id,
        products.sku,
        products.name,
        products.category_id,
        categories.name as category_name,
        categories.department,
        products.list_price_usd,
        products.unit_cost_usd,
        products.is_active,
        products.attributes,
        products.created_at,
        cast(coalesce(sales.orders, 0) as bigint) as orders,
        cast(coalesce(sales.units_sold, 0) as bigint) as units_sold,
        cast(coalesce(sales.revenue_usd, 0) as decimal(18, 2)) as revenue_usd,
        cast(coalesce(sales.returned_units, 0) as bigint) as returned_units,
        cast(coalesce(sales.refunds_usd, 0) as decimal(18, 2)) as refunds_usd,
        case
            when sales.units_sold > 0 then cast(sales.returned_units as double) / sales.units_sold
        end as return_rate
    from products
    left join categories
        on categories.category_id = products.category_id
    left join sales
        on sales.product_id = products.product_id

)

select * from final
