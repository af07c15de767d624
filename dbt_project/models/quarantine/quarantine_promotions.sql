{{ config(schema='quarantine', alias='promotions') }}

-- promotions has no quality rule: this model is empty, so that every source table has a quarantine table.

{{ empty_quarantine('promotions', ['promotion_id']) }}
