-- Sales by day x product category x region x sales channel, in USD. Cancelled orders are not
-- sales; returned orders are (gross sales; refunds are in fct_order_items and dim_products).

with lines as (

    select * from {{ ref('fct_order_items') }}
    where not is_cancelled

),

categories as (

    select * from {{ ref('categories') }}

),

aggregated as (

    select
        order_date,
        category_id,
        region,
        channel,
        count(distinct order_id) as orders,
        sum(quantity) as units,
        sum(line_revenue_usd) as revenue_usd
    from lines
    group by order_date, category_id, region, channel

),

final as (

    select
        aggregated.order_date,
        aggregated.category_id,
        categories.name as category_name,
        aggregated.region,
        aggregated.channel,
        cast(aggregated.orders as bigint) as orders,
        cast(aggregated.units as bigint) as units,
        cast(aggregated.revenue_usd as decimal(18, 2)) as revenue_usd,
        {{ average_to_cent('aggregated.revenue_usd', 'aggregated.orders') }} as avg_order_value_usd
    from aggregated
    left join categories
        on categories.category_id = aggregated.category_id

)

select * from final
