{{ config(schema='quarantine', alias='categories') }}

-- categories has no quality rule: this model is empty, so that every source table has a quarantine table.

{{ empty_quarantine('categories', ['category_id']) }}
