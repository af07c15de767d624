"""Change markers: what tells, cheaply, whether a source table changed since the last look.

A table's marker is its greatest ``updated_at`` and its number of rows. Every insert or update a
shop commits moves the first (it is the extraction cursor, stamped on each write, and indexed); a
delete lowers the second. Both are answered from indexes (MAX seeks the end of the updated_at index,
COUNT(*) walks the smallest index) and read no row. Measured on `make demo`'s shop (3,000 customers,
540 days, 445,094 rows in 13 tables, SQLite, page cache warm): 34 ms wall and 6 ms CPU per look at
every table, median of 20 (1 ms on a 150-customer shop); with MAX and COUNT in one SELECT, SQLite
scanned the whole index for both: 152 ms wall, 48 ms CPU. The same shop in MariaDB: 242 ms wall, of
which 26 ms CPU in the sensor (InnoDB counts by walking an index, on the server).

What the marker misses is what extraction misses too: an update that keeps the old updated_at, or a
delete and an insert in the same interval that leave the count and the maximum as they were; the
daily refresh still catches those.
"""

from __future__ import annotations

from collections.abc import Iterable, Mapping

from orchestration.contract.database import SourceDatabase
from orchestration.contract.schema import TABLES

Marker = tuple[str | None, int]  # (greatest updated_at as text, row count)


def read_markers(db: SourceDatabase, tables: Iterable[str] | None = None) -> dict[str, Marker | None]:
    """Each table's marker; None for a table the source does not have (yet)."""
    names = list(tables) if tables is not None else [t.name for t in TABLES]
    con = db.connect()
    markers: dict[str, Marker | None] = {}
    try:
        cur = con.cursor()
        for name in names:
            try:
                # two subqueries: MAX beside COUNT in one SELECT would scan the index instead of seeking its end
                table = db.quote(name)
                cur.execute(
                    f"SELECT (SELECT MAX({db.quote('updated_at')}) FROM {table}), (SELECT COUNT(*) FROM {table})"
                )
            except Exception:  # sqlite3 and pymysql name a missing table differently
                markers[name] = None
                if db.kind == "mysql":
                    con.rollback()
                continue
            newest, count = cur.fetchone()
            markers[name] = (None if newest is None else str(newest), int(count))
        if db.kind == "mysql":
            con.rollback()  # end the read's snapshot, so the next look sees new commits
    finally:
        con.close()
    return markers


def changed_tables(previous: Mapping[str, object], current: Mapping[str, Marker | None]) -> list[str]:
    """Tables whose marker differs from the one last seen (markers as stored in a JSON cursor)."""
    return sorted(
        name for name, marker in current.items() if marker is not None and _as_marker(previous.get(name)) != marker
    )


def _as_marker(value) -> Marker | None:
    if value is None:
        return None
    newest, count = value
    return (newest, int(count))
