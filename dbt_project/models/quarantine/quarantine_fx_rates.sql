{{ config(schema='quarantine', alias='fx_rates') }}

-- fx_rates has no quality rule: this model is empty, so that every source table has a quarantine table.

{{ empty_quarantine('fx_rates', ['rate_date', 'currency']) }}
