{{ config(schema='quarantine', alias='support_tickets') }}

-- support_tickets has no quality rule: this model is empty, so that every source table has a quarantine table.

{{ empty_quarantine('support_tickets', ['ticket_id']) }}
