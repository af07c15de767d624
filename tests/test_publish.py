"""Publishing only what changed, and checking only what a table gained: always the same answer as
replacing and checking everything."""

import duckdb
import pytest

from orchestration import query
from orchestration.lakehouse import duckdb_extensions
from orchestration.lakehouse.card_scan import scan_published_table
from orchestration.lakehouse.catalog import iceberg_compatible, load_catalog
from orchestration.lakehouse.increments import files_since
from orchestration.lakehouse.publish import publish_tables

KEY = {("curated", "events"): "event_id"}
ROWS = 30_000


@pytest.fixture
def writer(shoplake_home):
    """The transform database with curated.events (ids 1..ROWS, sessions of 10 events)."""
    shoplake_home.duckdb_path.parent.mkdir(parents=True, exist_ok=True)
    con = duckdb.connect(str(shoplake_home.duckdb_path))
    con.execute("CREATE SCHEMA curated")
    con.execute(
        f"""CREATE TABLE curated.events AS
        SELECT range + 1 AS event_id, 'session-' || ((range // 10) + 1) AS session_id, 'page' AS event_type,
               TIMESTAMP '2026-01-01' + INTERVAL (range) MINUTE AS occurred_at
        FROM range({ROWS}) ORDER BY random()"""  # stored out of key order, as a dbt build leaves it
    )
    con.close()
    return shoplake_home


def writer_sql(settings, sql: str) -> None:
    con = duckdb.connect(str(settings.duckdb_path))
    con.execute(sql)
    con.close()


def published_rows(settings) -> list[tuple]:
    con = query.connect(settings, namespaces=("curated",))
    try:
        return con.execute("SELECT * FROM curated.events ORDER BY event_id").fetchall()
    finally:
        con.close()


def writer_rows(settings) -> list[tuple]:
    con = duckdb_extensions.connect(settings.duckdb_extension_dir, str(settings.duckdb_path), read_only=True)
    try:
        return con.execute("SELECT * FROM curated.events ORDER BY event_id").fetchall()
    finally:
        con.close()


def publish(settings, run_id: str):
    return publish_tables(settings, [("curated", "events")], run_id, KEY)[("curated", "events")]


def test_changed_rows_are_published_as_a_delete_and_append_of_their_keys(writer, monkeypatch):
    monkeypatch.setattr("orchestration.lakehouse.publish.PUBLISH_BATCH_ROWS", 10_000)  # three files of key ranges
    first = publish(writer, "run-1")
    assert (first.mode, first.rows, first.rows_written) == ("replaced", ROWS, ROWS)
    assert published_rows(writer) == writer_rows(writer)
    # where the time went, shown in the asset's metadata: every phase that ran, in order
    assert list(first.phases) == ["hash", "diff", "write", "state"]
    assert sum(first.phases.values()) <= first.seconds + 0.01

    again = publish(writer, "run-2")
    assert (again.mode, again.snapshot_id, again.rows_written) == ("unchanged", first.snapshot_id, 0)
    assert list(again.phases) == ["hash", "diff"]

    # A day: 2 events change, the 3 events of one session leave, 5 events arrive.
    writer_sql(writer, "UPDATE curated.events SET event_type = 'purchase' WHERE event_id IN (12, 13)")
    writer_sql(writer, "DELETE FROM curated.events WHERE event_id IN (21, 22, 23)")
    writer_sql(
        writer,
        f"INSERT INTO curated.events SELECT {ROWS} + range + 1, 'session-new', 'page', TIMESTAMP '2027-01-01' "
        "FROM range(5)",
    )
    day = publish(writer, "run-3")
    assert (day.mode, day.rows, day.rows_written, day.keys_deleted) == ("changed rows", ROWS + 2, 7, 5)
    assert published_rows(writer) == writer_rows(writer)
    assert list(day.phases) == ["hash", "diff", "write", "state"]

    # Only the file holding keys 1..10,000 was rewritten, next to the new rows' file. The rewrite
    # holds only rows the base had (checked there): a check since the base reads the 7 new rows only.
    ice = load_catalog(writer).load_table("curated.events")
    increment = files_since(ice, first.snapshot_id)
    assert (increment.table_files, len(increment.files), increment.rows) == (4, 1, 7)
    assert (increment.rewritten_files, increment.rewritten_rows) == (1, 10_000 - 5)
    every_new_file = files_since(ice, first.snapshot_id, skip_rewrites=False)
    assert (len(every_new_file.files), every_new_file.rows, every_new_file.rewritten_files) == (2, (10_000 - 5) + 7, 0)

    # The next day starts from the state the diff left: one changed event, one key replaced.
    writer_sql(writer, f"UPDATE curated.events SET event_type = 'checkout' WHERE event_id IN (13, {ROWS + 3})")
    next_day = publish(writer, "run-4")
    assert (next_day.mode, next_day.rows_written, next_day.keys_deleted) == ("changed rows", 2, 2)
    assert published_rows(writer) == writer_rows(writer)


def test_files_are_cut_at_the_target_size_so_a_delete_rewrites_only_the_files_of_its_rows(writer, monkeypatch):
    # 3,000 rows' worth of Arrow bytes per file, in the types the publish writes
    con = duckdb.connect(str(writer.duckdb_path), read_only=True)
    arrow = con.execute("SELECT * FROM curated.events").to_arrow_table()
    con.close()
    arrow = arrow.cast(iceberg_compatible(arrow.schema))
    monkeypatch.setattr("orchestration.lakehouse.publish.PUBLISHED_FILE_BYTES", 3_000 * arrow.nbytes // ROWS)
    first = publish(writer, "run-1")
    ice = load_catalog(writer).load_table("curated.events")
    assert ice.properties["write.target-file-size-bytes"] == str(3_000 * arrow.nbytes // ROWS)
    before = {f["file_path"]: f["record_count"] for f in ice.inspect.files().to_pylist()}
    assert sorted(before.values()) == [3_000] * 10

    # an erasure: events in the first and the last file (key order) leave
    writer_sql(writer, f"DELETE FROM curated.events WHERE event_id IN (5, 6, {ROWS - 5})")
    day = publish(writer, "run-2")
    assert (day.mode, day.keys_deleted, day.rows) == ("changed rows", 3, ROWS - 3)
    after = {
        f["file_path"]: f["record_count"]
        for f in load_catalog(writer).load_table("curated.events").inspect.files().to_pylist()
    }
    assert len(set(before) - set(after)) == 2  # only the two files holding the erased rows were rewritten
    # their rewrites hold the rest of their rows (pyiceberg may cut a rewrite in two: it reads strings wider)
    assert sum(after[p] for p in set(after) - set(before)) == 2_998 + 2_999
    assert published_rows(writer) == writer_rows(writer)
    assert (
        files_since(load_catalog(writer).load_table("curated.events"), first.snapshot_id).rewritten_rows
        == 2_999 + 2_998
    )

    # a table published before this layout is replaced once, in it, and then diffed again
    load_catalog(writer).load_table("curated.events").transaction().remove_properties(
        "write.target-file-size-bytes"
    ).commit_transaction()
    assert publish(writer, "run-3").mode == "replaced"
    replaced = [
        f["record_count"] for f in load_catalog(writer).load_table("curated.events").inspect.files().to_pylist()
    ]
    assert (len(replaced), sum(replaced)) == (10, ROWS - 3)
    assert publish(writer, "run-4").mode == "unchanged"


def test_a_delete_rewriting_a_file_the_base_lacked_keeps_it_in_the_checks_scope(writer):
    first = publish(writer, "run-1")
    writer_sql(
        writer,
        f"INSERT INTO curated.events SELECT {ROWS} + range + 1, 'card 4539 1488 0343 6467', 'page', TIMESTAMP "
        "'2027-01-01' FROM range(5)",
    )
    second = publish(writer, "run-2")  # appends one file of 5 rows, never checked since `first`
    writer_sql(writer, f"DELETE FROM curated.events WHERE event_id = {ROWS + 1}")
    third = publish(writer, "run-3")  # a delete only: that file rewritten with its 4 other rows
    assert (third.mode, third.rows_written, third.keys_deleted) == ("changed rows", 0, 1)
    ice = load_catalog(writer).load_table("curated.events")

    since_first = files_since(ice, first.snapshot_id)  # the rewrite copies unchecked rows: read
    assert (len(since_first.files), since_first.rows, since_first.rewritten_files) == (1, 4, 0)
    since_second = files_since(ice, second.snapshot_id)  # the rewrite copies rows checked at `second`
    assert (since_second.files, since_second.rewritten_files, since_second.rewritten_rows) == ((), 1, 4)
    assert "1 files (4 rows) rewritten since by deletes from checked files, not read" in since_second.describe()

    tables = {}
    con = query.connect(writer, namespaces=("curated",), tables=tables)
    try:
        scan = scan_published_table(con, "curated.events", since_first)
    finally:
        con.close()
    assert (scan.rows, scan.leaks) == (4, 4)


def test_a_day_that_changes_more_than_a_fifth_of_the_rows_replaces_the_table(writer):
    publish(writer, "run-1")
    # 9,001 of 30,000 events change: above DIFF_MAX_FRACTION (0.2), a rewrite costs less than the diff
    writer_sql(writer, "UPDATE curated.events SET event_type = 'purchase' WHERE event_id <= 9001")
    day = publish(writer, "run-2")
    assert (day.mode, day.rows, day.rows_written, day.keys_deleted) == ("replaced", ROWS, ROWS, 0)
    assert published_rows(writer) == writer_rows(writer)
    # the diff that was tried and given up counts as the diff phase, before the replace's write
    assert list(day.phases) == ["hash", "diff", "write", "state"]
    assert sum(day.phases.values()) <= day.seconds + 0.01
    assert publish(writer, "run-3").mode == "unchanged"  # the replace recorded the state of every row


def test_a_table_moved_by_another_writer_is_replaced_whole(writer):
    first = publish(writer, "run-1")
    ice = load_catalog(writer).load_table("curated.events")
    ice.delete("event_id <= 100")  # not through publish: the recorded state no longer describes the table
    writer_sql(writer, "UPDATE curated.events SET event_type = 'purchase' WHERE event_id = 5000")
    again = publish(writer, "run-2")
    assert again.mode == "replaced" and again.snapshot_id != first.snapshot_id
    assert published_rows(writer) == writer_rows(writer)


def test_a_leak_in_a_new_file_is_found_and_an_old_pass_is_not_rescanned(writer):
    first = publish(writer, "run-1")
    writer_sql(
        writer, "INSERT INTO curated.events VALUES (900001, 'card 4539 1488 0343 6467', 'page', TIMESTAMP '2027-01-01')"
    )
    publish(writer, "run-2")
    tables = {}
    con = query.connect(writer, namespaces=("curated",), tables=tables)
    try:
        increment = files_since(tables["curated.events"], first.snapshot_id)
        scan = scan_published_table(con, "curated.events", increment)
        whole = scan_published_table(con, "curated.events")
    finally:
        con.close()
    assert (scan.rows, scan.leaks, scan.samples) == (1, 1, ["session_id: 453914******6467"])
    assert (whole.rows, whole.leaks) == (ROWS + 1, 1)
    assert "added since snapshot" in scan.scope and whole.scope == "whole table"


def test_files_since_needs_a_base_in_the_tables_history(writer):
    publish(writer, "run-1")
    ice = load_catalog(writer).load_table("curated.events")
    assert files_since(ice, None) is None
    assert files_since(ice, 12345) is None  # not a snapshot of this table
    same = files_since(ice, ice.current_snapshot().snapshot_id)
    assert (same.files, same.rows, same.table_files, same.table_rows) == ((), 0, 1, ROWS)


def test_the_delete_filter_matches_exactly_the_keys_in_few_ranges():
    import pyarrow as pa
    from pyiceberg.expressions import visitors
    from pyiceberg.io.pyarrow import expression_to_pyarrow
    from pyiceberg.schema import Schema
    from pyiceberg.types import LongType, NestedField

    from orchestration.lakehouse.publish import key_filter

    keys = [3, 4, 5, 900, 901, 5_000, *range(70_000, 70_300)]  # erased early events, a retention day, new events
    expression = key_filter("event_id", keys, max_ranges=3)
    schema = Schema(NestedField(1, "event_id", LongType(), required=False))
    bound = visitors.bind(schema, expression, case_sensitive=True)
    table = pa.table({"event_id": pa.array(range(80_000), pa.int64())})
    assert table.filter(expression_to_pyarrow(bound)).column("event_id").to_pylist() == sorted(keys)
    # cut at the two widest gaps: 3..901, 5,000 alone, 70,000..70,299
    assert str(expression).count("GreaterThanOrEqual") == 2
    assert "EqualTo(term=Reference(name='event_id'), literal=LongLiteral(5000))" in str(expression)


def staged_publish(settings, run_id: str):
    """Publish curated.events the way the dbt step does for a table with blocking checks."""
    events = ("curated", "events")
    return publish_tables(settings, [events], run_id, KEY, audited={events})[events]


def audited_rows(settings) -> tuple[list[tuple], bool]:
    """What the quality checks read: the staged snapshot when there is one."""
    from orchestration.defs.checks import audit

    con, tables = audit.open_session(settings, ["curated"])
    try:
        return con.execute("SELECT * FROM curated.events ORDER BY event_id").fetchall(), tables["curated.events"].staged
    finally:
        con.close()


def test_a_staged_snapshot_is_read_by_the_checks_and_current_only_once_promoted(writer):
    from orchestration.lakehouse.catalog import AUDIT_BRANCH, promote, staged_snapshot

    first = staged_publish(writer, "run-1")  # a new table: nothing current until its checks pass
    assert first.staged and first.mode == "replaced"
    assert query.published_tables(query.connect(writer, namespaces=("curated",))) == []  # readers: not published yet
    assert audited_rows(writer) == (writer_rows(writer), True)
    ice = load_catalog(writer).load_table("curated.events")
    assert ice.current_snapshot() is None and staged_snapshot(ice).snapshot_id == first.snapshot_id
    assert promote(ice, first.snapshot_id)
    assert published_rows(writer) == writer_rows(writer)
    assert audited_rows(writer)[1] is False  # nothing staged any more: the checks read the current snapshot

    before = published_rows(writer)
    writer_sql(writer, "UPDATE curated.events SET event_type = 'purchase' WHERE event_id IN (12, 13)")
    commits_before = len(load_catalog(writer).load_table("curated.events").metadata.metadata_log)
    day = staged_publish(writer, "run-2")  # a diff on the branch, started from main
    assert (day.mode, day.rows_written, day.keys_deleted, day.staged) == ("changed rows", 2, 2, True)
    assert published_rows(writer) == before  # readers keep the audited snapshot
    assert audited_rows(writer) == (writer_rows(writer), True)
    ice = load_catalog(writer).load_table("curated.events")
    assert ice.current_snapshot().snapshot_id == first.snapshot_id
    delete = ice.snapshot_by_id(ice.snapshot_by_id(day.snapshot_id).parent_snapshot_id)  # one commit: delete, append
    assert delete.parent_snapshot_id == first.snapshot_id
    assert promote(ice, day.snapshot_id)
    ice = load_catalog(writer).load_table("curated.events")
    assert ice.current_snapshot().snapshot_id == day.snapshot_id == ice.metadata.refs[AUDIT_BRANCH].snapshot_id
    assert published_rows(writer) == writer_rows(writer)
    # the publish's commit and the promotion's: the branch already was at main, no commit to move it
    assert len(ice.metadata.metadata_log) - commits_before == 2
    assert not promote(ice, day.snapshot_id)  # already current: nothing staged


def test_a_staged_snapshot_that_failed_its_checks_is_replaced_from_main_by_the_next_publish(writer):
    from pyiceberg.table.snapshots import ancestors_of

    from orchestration.lakehouse.catalog import promote, staged_snapshot

    good = staged_publish(writer, "run-1")
    promote(load_catalog(writer).load_table("curated.events"), good.snapshot_id)
    audited = published_rows(writer)

    writer_sql(writer, "UPDATE curated.events SET session_id = 'falsified' WHERE event_id = 7")
    bad = staged_publish(writer, "run-2")  # its checks fail: never promoted
    assert bad.mode == "changed rows" and published_rows(writer) == audited
    ice = load_catalog(writer).load_table("curated.events")
    assert staged_snapshot(ice).snapshot_id == bad.snapshot_id  # kept on the branch, for inspection

    # The publish state describes the failed snapshot, main does not hold it: the table is replaced,
    # from main, even though the build did not change since.
    again = staged_publish(writer, "run-3")
    assert (again.mode, again.staged) == ("replaced", True)
    ice = load_catalog(writer).load_table("curated.events")
    history = [s.snapshot_id for s in ancestors_of(ice.snapshot_by_id(again.snapshot_id), ice.metadata)]
    assert good.snapshot_id in history and bad.snapshot_id not in history
    assert staged_snapshot(ice).snapshot_id == again.snapshot_id and published_rows(writer) == audited

    writer_sql(writer, "UPDATE curated.events SET session_id = 'session-1' WHERE event_id = 7")  # fixed
    fixed = staged_publish(writer, "run-4")
    assert fixed.mode == "replaced"  # state and main still disagree until a promotion
    assert promote(load_catalog(writer).load_table("curated.events"), fixed.snapshot_id)
    assert published_rows(writer) == writer_rows(writer) == audited
    after = staged_publish(writer, "run-5")
    assert (after.mode, after.snapshot_id) == ("unchanged", fixed.snapshot_id)  # in step again
