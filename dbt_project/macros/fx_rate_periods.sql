{#
  curated.fx_rates as validity periods, for converting an amount on a given day:
      join ... on fx.currency = x.currency and {{ fx_period_covers('fx', 'x.day') }}
  A rate applies from its rate_date until the next published rate, so days without a rate
  (weekends, holidays) use the latest earlier one; days before a currency's first rate use that
  first rate. Rates are USD per one unit of the currency; USD itself converts at 1 (see
  usd_per_unit()), whether or not fx_rates lists it. The first period has no start and the last no
  end (NULL): any date a DATE column can hold, 1000-01-01 or 9999-12-31, finds its rate.
#}
{% macro fx_rate_periods() -%}
select
    currency,
    usd_per_unit,
    case
        when row_number() over (partition by currency order by rate_date) > 1 then rate_date
    end as valid_from,
    lead(rate_date) over (partition by currency order by rate_date) as valid_to
from {{ ref('fx_rates') }}
{%- endmacro %}


{# The fx_rate_periods() row `fx_alias` applies on `day`. #}
{% macro fx_period_covers(fx_alias, day) -%}
({{ fx_alias }}.valid_from is null or {{ day }} >= {{ fx_alias }}.valid_from)
        and ({{ fx_alias }}.valid_to is null or {{ day }} < {{ fx_alias }}.valid_to)
{%- endmacro %}


{# The USD rate of a currency from a joined fx_rate_periods() row: 1 for USD. #}
{% macro usd_per_unit(currency_column, fx_alias) -%}
cast(case when {{ currency_column }} = 'USD' then 1 else {{ fx_alias }}.usd_per_unit end as decimal(18,8))
{%- endmacro %}


{#
  A local amount in USD, rounded to cents. The amount is widened first: DuckDB types
  DECIMAL(12,2) * DECIMAL(18,8) as DECIMAL(18,10), which overflows from about 100 million.
#}
{% macro to_usd(amount, usd_per_unit) -%}
cast(round(cast({{ amount }} as decimal(38,2)) * {{ usd_per_unit }}, 2) as decimal(18,2))
{%- endmacro %}


{#
  total / count rounded half up to the cent, exactly: `total` is a non-negative decimal with `scale`
  decimals, `count` a positive integer. (DuckDB divides decimals in floating point, which rounds
  37.035 down to 37.03; this works in integers.)
#}
{% macro average_to_cent(total, count, scale=2) -%}
    {{ return(adapter.dispatch('average_to_cent')(total, count, scale)) }}
{%- endmacro %}

{% macro default__average_to_cent(total, count, scale) -%}
    {%- set units = '(' ~ count ~ ') * ' ~ (10 ** (scale - 2)) -%}
    cast(floor((2 * ({{ total }}) * {{ 10 ** scale }} + {{ units }}) / (2 * {{ units }})) * 0.01 as decimal(18,2))
{%- endmacro %}

{% macro duckdb__average_to_cent(total, count, scale) -%}
    {%- set units = '(' ~ count ~ ') * ' ~ (10 ** (scale - 2)) -%}
    cast(((2 * cast(({{ total }}) * {{ 10 ** scale }} as hugeint) + {{ units }}) // (2 * {{ units }})) * 0.01 as decimal(18,2))
{%- endmacro %}
