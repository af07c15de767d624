-- What each product really sells for in each country: the average unit price charged (before line
-- discounts, weighted by units) in the country's currency and in USD at each order's rate, and how
-- that compares with the product's USD list price.

with lines as (

    select * from {{ ref('fct_order_items') }}
    where not is_cancelled

),

products as (

    select * from {{ ref('products') }}

),

countries as (

    select * from {{ ref('countries') }}

),

priced as (

    select
        lines.product_id,
        lines.shipping_country as country,
        coalesce(countries.region, 'unknown') as region,
        countries.currency as country_currency,
        lines.currency,
        lines.order_id,
        lines.quantity,
        lines.unit_price,
        cast(lines.unit_price as decimal(38, 2)) * lines.usd_per_unit as unit_price_usd
    from lines
    left join countries
        on countries.country = lines.shipping_country

),

aggregated as (

    select
        product_id,
        country,
        region,
        coalesce(max(country_currency), min(currency)) as currency,
        count(distinct order_id) as orders,
        sum(quantity) as units,
        sum(unit_price_usd * quantity) as usd_total,
        sum(
            case when currency = coalesce(country_currency, currency) then cast(quantity as hugeint) * unit_price end
        ) as local_total,
        sum(case when currency = coalesce(country_currency, currency) then quantity end) as local_units
    from priced
    group by product_id, country, region

),

final as (

    select
        aggregated.product_id,
        products.sku,
        products.name,
        products.category_id,
        aggregated.country,
        aggregated.region,
        aggregated.currency,
        cast(aggregated.orders as bigint) as orders,
        cast(aggregated.units as bigint) as units,
        case
            when aggregated.local_units > 0
                then {{ average_to_cent('aggregated.local_total', 'aggregated.local_units') }}
        end as avg_unit_price_local,
        {{ average_to_cent('aggregated.usd_total', 'aggregated.units', scale=10) }} as avg_unit_price_usd,
        products.list_price_usd,
        cast(
            100 * (cast(aggregated.usd_total as double) / aggregated.units)
            / nullif(products.list_price_usd, 0) as double
        ) as price_index
    from aggregated
    inner join products
        on products.product_id = aggregated.product_id

)

select * from final
