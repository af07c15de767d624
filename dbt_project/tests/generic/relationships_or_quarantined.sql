{#
  Referential integrity between curated tables, allowing for quarantine: every non-NULL value of
  the column names a row of the parent curated model or a key its quarantine model holds. A child
  of a quarantined parent (an order line of an order with no customer, say) is itself valid and
  stays curated; it only loses its parent until the parent is fixed at the source.
#}
{% test relationships_or_quarantined(model, column_name, to, field, quarantine) %}

select child.{{ column_name }}
from {{ model }} as child
where child.{{ column_name }} is not null
  and not exists (
      select 1 from {{ to }} as parent
      where parent.{{ field }} = child.{{ column_name }}
  )
  and not exists (
      select 1 from {{ quarantine }} as quarantined
      where quarantined.{{ field }} = child.{{ column_name }}
  )

{% endtest %}
