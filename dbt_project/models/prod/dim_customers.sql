-- Customer 360: one row per curated customer with their order history, RFM scores and segment.
-- Cancelled orders are not purchases. Recency is measured against the latest order date in the
-- data, not today's date, so a rebuild over the same data gives the same table.

with customers as (

    select * from {{ ref('customers') }}

),

countries as (

    select * from {{ ref('countries') }}

),

orders as (

    select * from {{ ref('fct_orders') }}
    where not is_cancelled

),

as_of as (

    select max(order_date) as as_of_date
    from {{ ref('fct_orders') }}

),

purchases as (

    select
        customer_id,
        min(ordered_at) as first_order_at,
        max(ordered_at) as last_order_at,
        count(*) as orders,
        sum(total_usd) as revenue_usd
    from orders
    group by customer_id

),

refunds as (

    select
        orders.customer_id,
        sum({{ to_usd('returns.refund_amount', 'orders.usd_per_unit') }}) as refunds_usd
    from {{ ref('returns') }} as returns
    inner join {{ ref('order_items') }} as order_items
        on order_items.order_item_id = returns.order_item_id
    inner join orders
        on orders.order_id = order_items.order_id
    group by orders.customer_id

),

buyers as (

    select
        purchases.*,
        {{ dbt.datediff('cast(purchases.last_order_at as date)', 'as_of.as_of_date', 'day') }} as days_since_last_order
    from purchases
    cross join as_of

),

-- Scores 1-5 among customers who bought at least once, by value and never by row
-- (macros/rfm_score.sql): equal values share their average rank and so their score. In a shop
-- where most customers bought once, all one-order customers get the same frequency score instead
-- of some being cut into higher quintiles by customer id.
rfm as (

    select
        customer_id,
        {{ rfm_score('days_since_last_order', descending=true) }} as recency_score,
        {{ rfm_score('orders') }} as frequency_score,
        {{ rfm_score('revenue_usd') }} as monetary_score
    from buyers

),

final as (

    select
        customers.customer_id,
        customers.country,
        coalesce(countries.region, 'unknown') as region,
        customers.acquisition_channel,
        customers.marketing_opt_in,
        customers.created_at as signed_up_at,
        buyers.first_order_at,
        buyers.last_order_at,
        cast(coalesce(buyers.orders, 0) as bigint) as orders,
        cast(coalesce(buyers.revenue_usd, 0) as decimal(18, 2)) as revenue_usd,
        {{ average_to_cent('buyers.revenue_usd', 'buyers.orders') }} as avg_order_value_usd,
        cast(buyers.days_since_last_order as integer) as days_since_last_order,
        cast(rfm.recency_score as integer) as recency_score,
        cast(rfm.frequency_score as integer) as frequency_score,
        cast(rfm.monetary_score as integer) as monetary_score,
        case
            when rfm.customer_id is null then 'prospect'
            when rfm.recency_score >= 4 and rfm.frequency_score >= 4 and rfm.monetary_score >= 4 then 'champions'
            when rfm.recency_score >= 3 and rfm.frequency_score >= 3 then 'loyal'
            when rfm.recency_score >= 4 and buyers.orders = 1 then 'new'
            when rfm.recency_score >= 3 then 'promising'
            when rfm.frequency_score >= 3 then 'at_risk'
            else 'hibernating'
        end as segment,
        cast(coalesce(buyers.revenue_usd, 0) - coalesce(refunds.refunds_usd, 0) as decimal(18, 2)) as historical_clv_usd
    from customers
    left join countries
        on countries.country = customers.country
    left join buyers
        on buyers.customer_id = customers.customer_id
    left join rfm
        on rfm.customer_id = customers.customer_id
    left join refunds
        on refunds.customer_id = customers.customer_id

)

select * from final
