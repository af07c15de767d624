{#
  Custom schemas are used verbatim: a model configured with schema='curated' lands in `curated`,
  not `<target schema>_curated`, because the schema names (raw, curated, quarantine, prod) are
  the names users query. Models without a custom schema go to the target schema.
#}
{% macro generate_schema_name(custom_schema_name, node) -%}
    {%- if custom_schema_name is none -%}
        {{ target.schema }}
    {%- else -%}
        {{ custom_schema_name | trim }}
    {%- endif -%}
{%- endmacro %}
