-- Retention by acquisition month: customers grouped by the month they signed up, followed month
-- by month up to the latest month with orders. A customer is active in a month when they placed a
-- non-cancelled order in it. Every (cohort, month) pair is present, zero activity included.

with customers as (

    select
        customer_id,
        cast({{ dbt.date_trunc('month', 'signed_up_at') }} as date) as cohort_month
    from {{ ref('dim_customers') }}

),

cohort_sizes as (

    select
        cohort_month,
        count(*) as cohort_size
    from customers
    group by cohort_month

),

orders as (

    select
        customer_id,
        cast({{ dbt.date_trunc('month', 'order_date') }} as date) as activity_month,
        total_usd
    from {{ ref('fct_orders') }}
    where not is_cancelled

),

last_month as (

    select max(month_start) as last_activity_month
    from (
        select activity_month as month_start from orders
        union all
        select cohort_month as month_start from customers
    ) as months

),

-- months since acquisition 0, 1, 2, ... (600 months is more history than any shop has)
offsets as (

    select cast(generated_number - 1 as integer) as months_since_acquisition
    from ({{ dbt.generate_series(600) }}) as series

),

spine as (

    select
        cohort_sizes.cohort_month,
        offsets.months_since_acquisition,
        cast(
            {{ dbt.dateadd('month', 'offsets.months_since_acquisition', 'cohort_sizes.cohort_month') }} as date
        ) as activity_month,
        cohort_sizes.cohort_size
    from cohort_sizes
    cross join last_month
    inner join offsets
        on offsets.months_since_acquisition
            <= {{ dbt.datediff('cohort_sizes.cohort_month', 'last_month.last_activity_month', 'month') }}

),

activity as (

    select
        customers.cohort_month,
        orders.activity_month,
        count(distinct orders.customer_id) as active_customers,
        count(*) as orders,
        sum(orders.total_usd) as revenue_usd
    from orders
    inner join customers
        on customers.customer_id = orders.customer_id
    group by customers.cohort_month, orders.activity_month

),

final as (

    select
        spine.cohort_month,
        spine.months_since_acquisition,
        spine.activity_month,
        cast(spine.cohort_size as bigint) as cohort_size,
        cast(coalesce(activity.active_customers, 0) as bigint) as active_customers,
        cast(coalesce(activity.active_customers, 0) as double) / spine.cohort_size as retention_rate,
        cast(coalesce(activity.orders, 0) as bigint) as orders,
        cast(coalesce(activity.revenue_usd, 0) as decimal(18, 2)) as revenue_usd,
        cast(
            sum(coalesce(activity.revenue_usd, 0)) over (
                partition by spine.cohort_month
                order by spine.months_since_acquisition
                rows between unbounded preceding and current row
            ) as decimal(18, 2)
        ) as cumulative_revenue_usd
    from spine
    left join activity
        on activity.cohort_month = spine.cohort_month
            and activity.activity_month = spine.activity_month

)

select * from final
