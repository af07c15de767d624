-- Revenue by sales region and month in USD, with growth against the previous month and against
-- the same month a year earlier. Every region has every month between the first and the latest
-- month with orders (zero when it sold nothing), so the comparisons never skip a gap.
-- Seasonality: the region's average revenue in that calendar month over its average month.
-- Market-opportunity score (0-100), ranking the regions against each other within each month:
--   50% growth (year over year, else month over month, else 0), 30% revenue, 20% average order value,
--   each as the region's percent rank among the regions that month.

with orders as (

    select
        region,
        cast({{ dbt.date_trunc('month', 'order_date') }} as date) as month_start,
        order_id,
        customer_id,
        total_usd
    from {{ ref('fct_orders') }}
    where not is_cancelled

),

monthly as (

    select
        region,
        month_start,
        count(*) as orders,
        count(distinct customer_id) as customers,
        sum(total_usd) as revenue_usd
    from orders
    group by region, month_start

),

bounds as (

    select
        min(month_start) as first_month,
        max(month_start) as last_month
    from orders

),

offsets as (

    select cast(generated_number - 1 as integer) as month_offset
    from ({{ dbt.generate_series(600) }}) as series

),

months as (

    select cast({{ dbt.dateadd('month', 'offsets.month_offset', 'bounds.first_month') }} as date) as month_start
    from offsets
    cross join bounds
    where offsets.month_offset <= {{ dbt.datediff('bounds.first_month', 'bounds.last_month', 'month') }}

),

regions as (

    select distinct region from orders

),

dense as (

    select
        regions.region,
        months.month_start,
        coalesce(monthly.orders, 0) as orders,
        coalesce(monthly.customers, 0) as customers,
        coalesce(monthly.revenue_usd, 0) as revenue_usd
    from regions
    cross join months
    left join monthly
        on monthly.region = regions.region
            and monthly.month_start = months.month_start

),

compared as (

    select
        dense.region,
        dense.month_start,
        dense.orders,
        dense.customers,
        dense.revenue_usd,
        previous_month.revenue_usd as previous_month_revenue_usd,
        previous_year.revenue_usd as same_month_last_year_revenue_usd
    from dense
    left join dense as previous_month
        on previous_month.region = dense.region
            and previous_month.month_start = cast({{ dbt.dateadd('month', -1, 'dense.month_start') }} as date)
    left join dense as previous_year
        on previous_year.region = dense.region
            and previous_year.month_start = cast({{ dbt.dateadd('month', -12, 'dense.month_start') }} as date)

),

trends as (

    select
        region,
        month_start,
        cast(orders as bigint) as orders,
        cast(customers as bigint) as customers,
        cast(revenue_usd as decimal(18, 2)) as revenue_usd,
        case when orders > 0 then {{ average_to_cent('revenue_usd', 'orders') }} end as avg_order_value_usd,
        cast(previous_month_revenue_usd as decimal(18, 2)) as previous_month_revenue_usd,
        cast(
            (revenue_usd - previous_month_revenue_usd) / nullif(previous_month_revenue_usd, 0) as double
        ) as revenue_growth_mom,
        cast(same_month_last_year_revenue_usd as decimal(18, 2)) as same_month_last_year_revenue_usd,
        cast(
            (revenue_usd - same_month_last_year_revenue_usd) / nullif(same_month_last_year_revenue_usd, 0) as double
        ) as revenue_growth_yoy
    from compared

),

final as (

    select
        *,
        cast(
            avg(revenue_usd) over (partition by region, extract(month from month_start))
            / nullif(avg(revenue_usd) over (partition by region), 0)
            as double
        ) as seasonality_index,
        cast(100 * (
            0.5 * percent_rank() over (partition by month_start order by coalesce(revenue_growth_yoy, revenue_growth_mom, 0)) -- noqa: LT05
            + 0.3 * percent_rank() over (partition by month_start order by revenue_usd)
            + 0.2 * percent_rank() over (partition by month_start order by coalesce(avg_order_value_usd, 0))
        ) as double) as opportunity_score
    from trends

)

select * from final
