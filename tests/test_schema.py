"""The source contract: one definition, rendered as the MySQL DDL users read."""

import re
from pathlib import Path

import pyarrow as pa
import yaml
from jinja2.nativetypes import NativeEnvironment

from orchestration.contract import schema, vocabulary

SCHEMA_SQL = Path(schema.__file__).with_name("schema.sql")


def test_schema_sql_is_the_rendered_contract():
    # schema.sql is what users review; regenerate it with
    # python -c "from orchestration.contract.schema import mysql_ddl; print(mysql_ddl())" \
    #     > orchestration/contract/schema.sql
    assert SCHEMA_SQL.read_text() == schema.mysql_ddl()


def test_every_table_has_a_primary_key_and_a_millisecond_cursor():
    expected = {
        "customers",
        "categories",
        "products",
        "inventory",
        "promotions",
        "orders",
        "order_items",
        "payments",
        "shipments",
        "returns",
        "support_tickets",
        "web_events",
        "fx_rates",
    }
    assert {t.name for t in schema.TABLES} == expected
    for t in schema.TABLES:
        assert t.primary_key and all(k in t.column_names for k in t.primary_key), t.name
        assert t.column("updated_at").arrow_type == pa.timestamp("ms"), t.name


def test_money_is_exact_and_booleans_are_booleans():
    assert schema.table("orders").column("total").arrow_type == pa.decimal128(12, 2)
    assert schema.table("fx_rates").column("usd_per_unit").arrow_type == pa.decimal128(18, 8)
    assert schema.table("customers").column("marketing_opt_in").arrow_type == pa.bool_()


def test_only_payments_carry_a_card_number_column():
    assert [(t.name, c.name) for t in schema.TABLES for c in t.columns if c.card_number] == [
        ("payments", "card_number")
    ]


# ---- one source for each vocabulary: orchestration/contract/vocabulary.py ---------------------

REPO = Path(__file__).resolve().parent.parent
DBT = REPO / "dbt_project"


def test_dbt_vars_are_the_contracts_vocabularies():
    # regenerate with: python -m orchestration.contract.vocabulary
    text = (DBT / "dbt_project.yml").read_text(encoding="utf-8")
    assert vocabulary.rewrite_dbt_vars(text) == text
    assert yaml.safe_load(text)["vars"] == vocabulary.dbt_vars()


def test_every_enumerated_source_column_has_its_vocabulary():
    for (table, column), name in vocabulary.COLUMN_VOCABULARIES.items():
        assert schema.table(table).column(column).is_text
        assert name in vocabulary.VOCABULARIES
        # the DDL comment users read lists the same values
        assert schema.table(table).column(column).doc.startswith(" | ".join(vocabulary.VOCABULARIES[name]))
    assert vocabulary.REGIONS == ("north_america", "europe", "asia_pacific", "latin_america")
    assert len(vocabulary.COUNTRIES) == 13 and vocabulary.CURRENCIES[:2] == ("USD", "CAD")


def _render(value, dbt_vars=None):
    """A schema.yml test argument as dbt renders it (natively: a list stays a list)."""
    if not isinstance(value, str):
        return value
    dbt_vars = dbt_vars or vocabulary.dbt_vars()
    return NativeEnvironment().from_string(value).render(var=dbt_vars.__getitem__)


def _accepted_values(path: Path):
    for model in yaml.safe_load(path.read_text(encoding="utf-8"))["models"]:
        for column in model.get("columns", []):
            for test in column.get("data_tests", []):
                if isinstance(test, dict) and "accepted_values" in test:
                    yield model["name"], column["name"], test["accepted_values"]["arguments"]["values"]


def _vocabulary_of(values) -> str | None:
    """The vocabulary a list of values is a copy of (perhaps a stale one): two or more shared values."""
    values = {str(v) for v in values} - {"unknown"}
    near = [(len(set(vocab) ^ values), name) for name, vocab in vocabulary.VOCABULARIES.items()]
    near = [(distance, name) for distance, name in near if len(set(vocabulary.VOCABULARIES[name]) & values) >= 2]
    return min(near)[1] if near else None


def test_dbt_accepted_values_read_the_vocabulary_vars():
    seen = set()
    for path in (DBT / "models" / "curated" / "schema.yml", DBT / "models" / "prod" / "schema.yml"):
        for model, column, values in _accepted_values(path):
            rendered = _render(values)
            name = _vocabulary_of(rendered)
            if name is None:
                continue  # a mart's own list (RFM scores, segments)
            assert isinstance(values, str) and f"var('vocabularies')['{name}']" in values, (
                f"{path.parent.name}.{model}.{column} lists {name} values itself: use "
                f"\"{{{{ var('vocabularies')['{name}'] }}}}\""
            )
            assert set(rendered) - set(vocabulary.VOCABULARIES[name]) <= {"unknown"}
            seen.add(name)
    assert seen == set(vocabulary.VOCABULARIES)  # every vocabulary is tested in dbt


def test_dbt_accepted_values_follow_a_changed_vocabulary():
    # the argument is an expression over the var, so a new status reaches the test without an edit
    changed = vocabulary.dbt_vars()
    changed["vocabularies"]["order_status"] = [*changed["vocabularies"]["order_status"], "on_hold"]
    statuses = {
        (m, c): _render(v, changed)
        for m, c, v in _accepted_values(DBT / "models" / "curated" / "schema.yml")
        if (m, c) == ("orders", "status")
    }
    assert statuses == {("orders", "status"): [*vocabulary.ORDER_STATUSES, "on_hold"]}


def test_quarantine_models_check_each_column_against_its_vocabulary():
    found = {}
    for path in (DBT / "models" / "quarantine").glob("quarantine_*.sql"):
        table = path.stem.removeprefix("quarantine_")
        sql = path.read_text(encoding="utf-8")
        assert not re.search(r"one_of\(\s*'\w+'\s*,\s*\[", sql), f"{path.name} lists a vocabulary itself"
        for column, name in re.findall(r"one_of\(\s*'(\w+)'\s*,\s*var\('vocabularies'\)\['(\w+)'\]\s*\)", sql):
            found[(table, column)] = name
    assert found == vocabulary.COLUMN_VOCABULARIES


def _isin_checks(schemas):
    for table, model in schemas.items():
        for column, col in model.to_schema().columns.items():
            for check in col.checks:
                if check.name == "isin":
                    yield table, column, tuple(check.statistics["allowed_values"])


def test_pandera_schemas_check_the_contracts_vocabularies():
    from orchestration.defs.checks.schemas_curated import CURATED_SCHEMAS
    from orchestration.defs.checks.schemas_prod import PROD_SCHEMAS

    curated = {(t, c): v for t, c, v in _isin_checks(CURATED_SCHEMAS)}
    for (table, column), name in vocabulary.COLUMN_VOCABULARIES.items():
        assert curated[(table, column)] == vocabulary.VOCABULARIES[name], (table, column)
    assert curated[("countries", "region")] == vocabulary.REGIONS
    for schemas in (CURATED_SCHEMAS, PROD_SCHEMAS):
        for table, column, values in _isin_checks(schemas):
            name = _vocabulary_of(values)
            if name is not None:  # a copy of a vocabulary is the vocabulary (a mart adds 'unknown' regions)
                assert values in (vocabulary.VOCABULARIES[name], (*vocabulary.VOCABULARIES[name], "unknown")), (
                    table,
                    column,
                )


def test_the_email_rule_is_the_contracts_in_dbt_and_python():
    pattern = re.compile(vocabulary.EMAIL_PATTERN)
    assert pattern.match("ada.lovelace+shop@example.co.uk") and not pattern.match("ada@@example.com")
    macro = (DBT / "models" / "quarantine" / "quarantine_customers.sql").read_text(encoding="utf-8")
    assert "var('email_pattern')" in macro
