{#
  The quarantine rules a row breaks on its own, declared per model as a list of checks and turned
  into one row per (key, rule) with every offending value of that rule listed in declaration order:

      {{ rule_violations('latest', ['order_id'], [
          required('customer_id'),
          one_of('status', ['placed', 'paid']),
          ...
      ]) }}

  A check is a dict: rule (a name of orchestration/contract/quality_rules.py), when (a SQL condition
  on the row that means "broken") and shown (a SQL text expression naming the offending value).
  The helpers below cover what the MySQL schema cannot enforce: a NULL where the business needs a
  value (zero dates are read as NULL), a value outside a vocabulary or a format (non-strict MySQL
  stores '' for a bad enum), a number or date out of range, fields that contradict each other, and
  a foreign key that names nothing.
#}
{% macro rule_violations(relation, key_columns, checks) -%}
{%- set keys = key_columns | join(', ') -%}
select
    {{ keys }},
    rule,
    string_agg(shown, ', ' order by check_number) as offending_values,
    max(_extracted_at) as _extracted_at
from (
    {%- for check in checks %}
    select
        {{ keys }},
        '{{ check.rule }}' as rule,
        {{ loop.index }} as check_number,
        coalesce({{ check.shown }}, '{{ check.rule }}') as shown,
        _extracted_at
    from {{ relation }}
    where {{ check.when }}
    {%- if not loop.last %}
    union all
    {%- endif %}
    {%- endfor %}
) as broken
group by {{ keys }}, rule
{%- endmacro %}


{#
  The value of `column` as short text for offending_values: NULL spelled out, '' kept visible.
  A timestamp (every DATETIME column of the contract is named *_at) is shown as a pair of date
  and time, ('2026-09-08', '14:39:24.417'): written whole, its 17 digits are a Luhn-valid run one
  time in ten, which the card-number leak scanner of the published tables would flag.
#}
{% macro shown_value(column) -%}
{%- if column.endswith('_at') -%}
'{{ column.split('.')[-1] }}=' || coalesce('(''' || strftime({{ column }}, '%Y-%m-%d') || ''', ''' || strftime({{ column }}, '%H:%M:%S.%g') || ''')', 'NULL')
{%- else -%}
'{{ column.split('.')[-1] }}=' || coalesce('''' || cast({{ column }} as varchar) || '''', 'NULL')
{%- endif -%}
{%- endmacro %}


{# null_required_field: the business needs a value (zero dates arrive as NULL too). #}
{% macro required(column) -%}
{#- a zero or partial-zero date arrives as NULL; extraction keeps its source text in _invalid_values -#}
{%- set source_text = "json_extract_string(_invalid_values, '$." ~ column ~ "')" -%}
{%- set shown = "'" ~ column ~ "=NULL' || coalesce(' (source text ' || " ~ source_text ~ " || ')', '')" -%}
{{ return({'rule': 'null_required_field', 'when': column ~ ' is null', 'shown': shown}) }}
{%- endmacro %}


{# invalid_value: a value outside the column's vocabulary ('' included). NULL is not judged here. #}
{% macro one_of(column, values) -%}
{%- set quoted = [] -%}
{%- for v in values -%}{%- do quoted.append("'" ~ v ~ "'") -%}{%- endfor -%}
{{ return({'rule': 'invalid_value', 'when': column ~ ' not in (' ~ (quoted | join(', ')) ~ ')', 'shown': shown_value(column)}) }}
{%- endmacro %}


{# invalid_value: a value that does not match an anchored pattern (a country or currency code). #}
{% macro matches(column, pattern) -%}
{{ return({'rule': 'invalid_value', 'when': 'not ' ~ regex_full_match(column, pattern), 'shown': shown_value(column)}) }}
{%- endmacro %}


{# invalid_value: an empty or blank text where the business needs a name or code. #}
{% macro not_blank(column) -%}
{{ return({'rule': 'invalid_value', 'when': 'trim(' ~ column ~ ') = \'\'', 'shown': shown_value(column)}) }}
{%- endmacro %}


{# out_of_range: `condition` (on the column) does not hold. NULL is not judged here. #}
{% macro in_range(column, condition) -%}
{{ return({'rule': 'out_of_range', 'when': 'not (' ~ condition ~ ')', 'shown': shown_value(column)}) }}
{%- endmacro %}


{# inconsistent_fields: fields of one row contradict each other; `shown` names them. #}
{% macro consistent(condition, columns) -%}
{%- set parts = [] -%}
{%- for c in columns -%}{%- do parts.append(shown_value(c)) -%}{%- endfor -%}
{{ return({'rule': 'inconsistent_fields', 'when': 'not coalesce(' ~ condition ~ ', true)', 'shown': parts | join(" || ', ' || ")}) }}
{%- endmacro %}


{#
  orphan_<parent>: a non-NULL foreign key that names no row of `parent_relation` (a model or a
  subquery in parentheses with an alias-free select of the parent key).
#}
{% macro references(rule, column, parent_select, parent_key) -%}
{{ return({'rule': rule,
           'when': column ~ ' is not null and ' ~ column ~ ' not in (select ' ~ parent_key ~ ' from (' ~ parent_select ~ ') as parents where ' ~ parent_key ~ ' is not null)',
           'shown': shown_value(column)}) }}
{%- endmacro %}


{# The live keys of a source table (its latest live raw versions), for orphan checks that must not ref curated. #}
{% macro live_keys(table_name, key_column) -%}
select {{ key_column }} from ({{ latest_live_versions(table_name, [key_column]) }}) as live
{%- endmacro %}
