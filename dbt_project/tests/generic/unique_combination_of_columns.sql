{#
  The columns together identify a row (composite keys, mart grains). NULLs count as values, so a
  grain column that is NULL on two rows still counts as a duplicate.
#}
{% test unique_combination_of_columns(model, combination_of_columns) %}

select
    {{ combination_of_columns | join(', ') }},
    count(*) as rows_with_this_key
from {{ model }}
group by {{ combination_of_columns | join(', ') }}
having count(*) > 1

{% endtest %}
