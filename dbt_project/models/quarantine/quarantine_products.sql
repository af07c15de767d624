{{ config(schema='quarantine', alias='products') }}

-- products has no quality rule: this model is empty, so that every source table has a quarantine table.

{{ empty_quarantine('products', ['product_id']) }}
