{#
  A boolean SQL expression that must hold on every row (NULL counts as a failure), e.g.
  "retention_rate between 0 and 1". Returns the rows where it does not.
#}
{% test expression_is_true(model, expression, column_name=none) %}

select *
from {{ model }}
where not coalesce({{ expression }}, false)

{% endtest %}
