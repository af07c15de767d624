"""The ``shoplake`` command: generate and advance the demo shop, query prod, prepare dbt.

Every error a user can cause ends in one line naming the problem and the fix (exit code 2), never a
traceback.
"""

from __future__ import annotations

import argparse
import datetime as dt
import shutil
import subprocess
import sys
from pathlib import Path

from orchestration.settings import DBT_PROJECT_DIR, Settings

OUTPUT_FORMATS = ("table", "csv", "json", "parquet")


class UsageError(Exception):
    pass


def _positive(name: str):
    def parse(text: str) -> int:
        try:
            value = int(text)
        except ValueError:
            raise argparse.ArgumentTypeError(f"{name} must be a whole number, got {text!r}") from None
        if value < 1:
            raise argparse.ArgumentTypeError(f"{name} must be at least 1, got {value}")
        return value

    return parse


def _date(text: str) -> dt.date:
    try:
        return dt.date.fromisoformat(text)
    except ValueError:
        raise argparse.ArgumentTypeError(f"dates are written YYYY-MM-DD, got {text!r}") from None


def build_parser() -> argparse.ArgumentParser:
    parser = argparse.ArgumentParser(prog="shoplake", description="Shoplake: the e-commerce analytics lakehouse.")
    sub = parser.add_subparsers(dest="command", required=True, metavar="COMMAND")

    g = sub.add_parser("generate", help="create the demo shop (SQLite by default, or a MySQL URL)")
    g.add_argument("--customers", type=_positive("--customers"), default=1000)
    g.add_argument("--days", type=_positive("--days"), default=120)
    g.add_argument("--seed", type=int, default=42)
    g.add_argument("--end-date", type=_date, default=None, help="last day of activity (default 2026-10-31)")
    g.add_argument("--dirty-rate", type=float, default=None, help="fraction of planted dirty rows per kind")
    g.add_argument("--source", default=None, help="database URL (default: SHOPLAKE_SOURCE_URL or the demo SQLite file)")
    g.add_argument("--overwrite", action="store_true", help="replace an existing shop")
    g.add_argument("--quiet", action="store_true", help="no progress bars")
    _add_shop_kind_flags(g)

    s = sub.add_parser("simulate", help="advance the shop in place: new activity, updates, hard deletes")
    s.add_argument("--days", type=_positive("--days"), default=1)
    s.add_argument("--seed", type=int, default=None)
    s.add_argument("--source", default=None)
    s.add_argument("--quiet", action="store_true")
    s.add_argument(
        "--rate",
        type=float,
        default=None,
        help="run the shop live instead: about RATE orders a minute with everything that follows them, "
        "until Ctrl-C or --minutes (--days is ignored)",
    )
    s.add_argument("--minutes", type=float, default=None, help="with --rate: stop after this many minutes")
    s.add_argument("--step-seconds", type=float, default=5.0, help="with --rate: seconds between writes")
    s.add_argument("--steps", type=_positive("--steps"), default=None, help="with --rate: stop after this many writes")

    q = sub.add_parser("sql", help="query the published prod, curated and quarantine tables")
    q.add_argument(
        "query", nargs="?", help='e.g. "select count(*) from prod.fct_orders"; omit it for an interactive session'
    )
    q.add_argument("--format", choices=OUTPUT_FORMATS, default="table")
    q.add_argument("--output", default=None, help="write to this file instead of standard output")
    q.add_argument("--max-rows", type=int, default=50, help="rows shown in table format")

    sub.add_parser("tables", help="list the tables you can query")
    p = sub.add_parser("scan-pans", help="scan every file under the home for card numbers (exit 1 when one is found)")
    p.add_argument("--path", default=None, help="scan this file or folder instead of the whole home")
    sub.add_parser("prepare", help="parse the dbt project so Dagster can load it (run once after install)")
    sub.add_parser("where", help="print where everything is and how to look at it")
    sub.add_parser("summary", help="what the last run left: checks, champion models, review queue, low stock")
    m = sub.add_parser("mlflow-ui", help="start the MLflow UI on 127.0.0.1:5000")
    m.add_argument("--port", type=int, default=5000)
    return parser


# flag dest -> ShopConfig field, for the options that make hard shops
SHOP_KIND_FLAGS = (
    "repeat_rate",
    "seasonality",
    "demand_noise",
    "categories",
    "one_currency",
    "payment_method",
    "chargebacks",
    "web_events",
    "free_item_rate",
)


def _add_shop_kind_flags(g: argparse.ArgumentParser) -> None:
    """What kind of shop: the demo shop by default; each flag takes away some of its signal, as real shops do."""
    from demo_shop.config import PROFILES, REAL_LIKE
    from demo_shop.reference_data import METHODS

    k = g.add_argument_group(
        "kind of shop",
        "Hard shops on demand; a flag given wins over the profile. The real-like profile sets: "
        + ", ".join(f"{name}={value}" for name, value in REAL_LIKE.items())
        + ".",
    )
    k.add_argument(
        "--profile", choices=tuple(PROFILES), default="demo", help="a preset of the options below (default demo)"
    )
    k.add_argument(
        "--repeat-rate",
        type=float,
        default=None,
        metavar="P",
        help="chance a customer can buy again after each order: 1 always (default), lower for one-time buyers",
    )
    k.add_argument(
        "--seasonality",
        type=float,
        default=None,
        metavar="A",
        help="amplitude of the yearly and weekly cycles: 1 the demo shop's (default), 0 none",
    )
    k.add_argument(
        "--demand-noise",
        type=float,
        default=None,
        metavar="SIGMA",
        help="sigma of a daily log-normal shock on the shop's demand (default 0)",
    )
    k.add_argument(
        "--categories",
        type=_positive("--categories"),
        default=None,
        metavar="N",
        help="sell only the first N product categories (default all 11)",
    )
    k.add_argument(
        "--one-currency",
        action=argparse.BooleanOptionalAction,
        default=None,
        help="charge everyone in USD at the list price (default: the shopper's currency)",
    )
    k.add_argument(
        "--payment-method",
        choices=METHODS,
        default=None,
        help="every payment by this method, e.g. bank_transfer for no cards (default: each country's mix)",
    )
    k.add_argument(
        "--chargebacks",
        action=argparse.BooleanOptionalAction,
        default=None,
        help="fraud surfaces as chargebacks (default yes)",
    )
    k.add_argument(
        "--web-events", action=argparse.BooleanOptionalAction, default=None, help="track the clickstream (default yes)"
    )
    k.add_argument(
        "--free-item-rate",
        type=float,
        default=None,
        metavar="F",
        help="fraction of order lines given away at 0.00 (default 0)",
    )


def _shop_kind(args) -> dict:
    """The kind-of-shop flags the user gave (None: not given, the profile or the default decides)."""
    return {name: getattr(args, name) for name in SHOP_KIND_FLAGS if getattr(args, name, None) is not None}


def main(argv: list[str] | None = None) -> int:
    parser = build_parser()
    args = parser.parse_args(argv)
    from orchestration.contract.database import SourceUnavailable

    try:
        settings = Settings.from_env()
    except ValueError as exc:  # a malformed SHOPLAKE_* variable
        print(f"shoplake {args.command}: error: {exc}", file=sys.stderr)
        return 2
    try:
        return COMMANDS[args.command](args, settings)
    except (UsageError, SourceUnavailable) as exc:
        print(f"shoplake {args.command}: error: {exc}", file=sys.stderr)
        return 2
    except OSError as exc:  # a home (or --output) that cannot be written: say where, not how deep it failed
        where = f": {exc.filename}" if exc.filename else ""
        print(
            f"shoplake {args.command}: error: {exc.strerror or exc}{where}. Check that you may write there "
            f"(Shoplake writes under SHOPLAKE_HOME, now {settings.home}).",
            file=sys.stderr,
        )
        return 2
    except KeyboardInterrupt:
        return 130


def _source_url(args, settings: Settings) -> str:
    return args.source or settings.source_url


def cmd_generate(args, settings: Settings) -> int:
    from demo_shop.generate import ShopConfig, existing_shop, generate_shop
    from orchestration.contract.database import SourceDatabase, SourceUnavailable

    url = _source_url(args, settings)
    kwargs = {"customers": args.customers, "days": args.days, "seed": args.seed}
    if args.end_date:
        kwargs["end_date"] = args.end_date
    if args.dirty_rate is not None:
        kwargs["dirty_rate"] = args.dirty_rate
    try:
        config = ShopConfig.with_profile(args.profile, **kwargs, **_shop_kind(args))
        config.validate()
        db = SourceDatabase(url)
        if not args.overwrite and (existing := existing_shop(db)):
            raise UsageError(f"{existing} already exists: pass --overwrite to replace it")
        counts = generate_shop(config, url, settings.truth_dir, progress=not args.quiet)
    except (ValueError, SourceUnavailable) as exc:
        raise UsageError(str(exc)) from None
    total = sum(counts.values())
    print(f"generated {total:,} rows into {SourceDatabase(url).redacted_url}; ground truth in {settings.truth_dir}")
    for name, n in counts.items():
        print(f"  {name:<16} {n:>12,}")
    return 0


def cmd_simulate(args, settings: Settings) -> int:
    from demo_shop.simulate import simulate_shop, stream_shop
    from orchestration.contract.database import SourceUnavailable

    if args.rate is not None:
        try:
            summary = stream_shop(
                args.rate,
                _source_url(args, settings),
                settings.truth_dir,
                minutes=args.minutes,
                step_seconds=args.step_seconds,
                seed=args.seed,
                max_steps=args.steps,
            )
        except (ValueError, SourceUnavailable, FileNotFoundError) as exc:
            raise UsageError(str(exc)) from None
        print(f"streamed {summary['orders']:,} orders over {summary['days']} shop day(s) in {summary['seconds']} s")
        for key, value in summary.items():
            print(f"  {key}: {value}")
        return 0
    try:
        summary = simulate_shop(
            args.days, _source_url(args, settings), settings.truth_dir, seed=args.seed, progress=not args.quiet
        )
    except (ValueError, SourceUnavailable, FileNotFoundError) as exc:
        raise UsageError(str(exc)) from None
    print(f"advanced the shop by {args.days} day(s)")
    for key, value in summary.items():
        print(f"  {key}: {value}")
    return 0


def cmd_sql(args, settings: Settings) -> int:
    import duckdb

    from orchestration import query

    con = query.connect(settings)
    if args.query is None:
        return _interactive(con, settings, args)
    try:
        result = query.run_query(con, args.query)
    except (query.UnknownTable, query.NotAllowed) as exc:
        raise UsageError(str(exc)) from None
    except duckdb.Error as exc:
        raise UsageError(
            f"{exc}\nTables you can query: {', '.join(query.published_tables(con)) or 'none yet'}"
        ) from None
    if result.description is None:
        return 0
    table = result.fetch_arrow_table()
    _write_result(table, args.format, args.output, args.max_rows)
    return 0


def _interactive(con, settings: Settings, args) -> int:
    """A small SQL prompt: statements end with `;`; `.tables`, `.refresh`, `.quit`."""
    from orchestration import query

    print(
        "Shoplake SQL over the published Iceberg tables. End statements with ';'. "
        ".tables lists tables, .refresh re-reads the newest snapshots, .quit leaves."
    )
    buffer = ""
    while True:
        try:
            line = input("shoplake> " if not buffer else "     ...> ")
        except EOFError:
            print()
            return 0
        command = line.strip()
        if not buffer and command in (".quit", ".exit"):
            return 0
        if not buffer and command == ".tables":
            print("\n".join(query.published_tables(con)))
            continue
        if not buffer and command == ".refresh":
            con = query.connect(settings)
            print("now reading the newest snapshots")
            continue
        buffer += line + "\n"
        if not command.endswith(";"):
            continue
        statement, buffer = buffer.strip().rstrip(";"), ""
        try:
            result = query.run_query(con, statement)
            if result.description is not None:
                _write_result(result.fetch_arrow_table(), args.format, None, args.max_rows)
        except Exception as exc:  # show the error, keep the session
            print(f"error: {exc}")


def _write_result(table, fmt: str, output: str | None, max_rows: int) -> None:
    import pyarrow.csv as pacsv
    import pyarrow.parquet as pq

    if fmt == "parquet":
        if not output:
            raise UsageError("--format parquet needs --output FILE")
        pq.write_table(table, output)
        return
    if fmt == "csv":
        # pyarrow always quotes the header; the csv module quotes a name only when it must.
        import csv
        import io

        header = io.StringIO()
        csv.writer(header, lineterminator="\n").writerow(table.column_names)
        body = io.BytesIO()
        pacsv.write_csv(table, body, pacsv.WriteOptions(include_header=False, quoting_style="needed"))
        data = header.getvalue().encode() + body.getvalue()
        if output:
            Path(output).write_bytes(data)
        else:
            sys.stdout.buffer.write(data)
            sys.stdout.flush()
        return
    if fmt == "json":
        import json

        text = json.dumps(table.to_pylist(), default=str, indent=1)
    else:
        text = _render_table(table, max_rows)
    if output:
        Path(output).write_text(text + "\n")
    else:
        print(text)


def _render_table(table, max_rows: int) -> str:
    names = table.column_names
    rows = [["NULL" if v is None else str(v) for v in row.values()] for row in table.slice(0, max_rows).to_pylist()]
    widths = [max([len(n)] + [len(r[i]) for r in rows]) for i, n in enumerate(names)]
    line = "+-" + "-+-".join("-" * w for w in widths) + "-+"
    out = [line, "| " + " | ".join(n.ljust(w) for n, w in zip(names, widths)) + " |", line]
    out += ["| " + " | ".join(v.rjust(w) for v, w in zip(r, widths)) + " |" for r in rows]
    out.append(line)
    if table.num_rows > max_rows:
        out.append(f"({table.num_rows:,} rows, {max_rows} shown; use --format csv for all)")
    else:
        out.append(f"({table.num_rows:,} row{'s' if table.num_rows != 1 else ''})")
    return "\n".join(out)


def cmd_scan_pans(args, settings: Settings) -> int:
    """One line per card number found (file, where in it, the number masked); exit 1 when any."""
    from orchestration.lakehouse.home_scan import scan_home

    root = Path(args.path).expanduser() if args.path else settings.home
    if not root.exists():
        raise UsageError(f"{root} does not exist: pass --path a file or folder (default: the home, SHOPLAKE_HOME)")
    scan = scan_home(settings, root)
    for finding in scan.findings:
        print(finding.line())
    for skipped in scan.skipped:
        print(f"not scanned: {skipped}", file=sys.stderr)
    n = len(scan.findings)
    verdict = f"{n} card number{'s' if n != 1 else ''} found" if n else "no card number found"
    print(f"scanned {scan.files:,} files ({scan.bytes / 1e6:,.1f} MB) under {scan.root}: {verdict}", file=sys.stderr)
    return 1 if scan.findings else 0


def cmd_tables(args, settings: Settings) -> int:
    from orchestration import query

    tables = query.published_tables(query.connect(settings))
    print("\n".join(tables) if tables else "no published tables yet: run `make demo`")
    return 0


def cmd_prepare(args, settings: Settings) -> int:
    """dagster-dbt loads dbt's manifest at import time; write it with `dbt parse`."""
    from orchestration.resources import parse_dbt_project

    if parse_dbt_project(settings).returncode:
        raise UsageError("dbt parse failed (see above): fix the dbt project, then run `shoplake prepare` again")
    print(f"dbt manifest ready in {DBT_PROJECT_DIR / 'target'}")
    # The Dagster instance needs Shoplake's run queue and pool limits (one lakehouse writer at a time).
    instance_yaml = settings.dagster_home / "dagster.yaml"
    if not instance_yaml.exists():
        settings.dagster_home.mkdir(parents=True, exist_ok=True)
        shutil.copy(Path(__file__).with_name("dagster.yaml"), instance_yaml)
        print(f"Dagster instance settings written to {instance_yaml}")
    return 0


def cmd_where(args, settings: Settings) -> int:
    print(
        f"""
Shoplake is ready. Everything it wrote is under {settings.home}

  Dagster UI     make dev          then open http://127.0.0.1:3000 (asset graph, runs, checks)
  SQL            .venv/bin/shoplake sql "select * from prod.daily_sales order by order_date desc limit 10"
                 .venv/bin/shoplake tables      (every table you can query)
  MLflow UI      make mlflow       then open http://127.0.0.1:5000 (experiments, registered models)

  source shop    {settings.source_url}
  ground truth   {settings.truth_dir}
  Iceberg        catalog {settings.catalog_uri}
                 warehouse {settings.warehouse}
  MLflow store   {settings.mlflow_tracking_uri}
"""
    )
    return 0


SUMMARY_ROWS = 5  # rows shown of the review queue and of the low-stock list


def cmd_summary(args, settings: Settings) -> int:
    """A short account of the lakehouse as published: read from the published tables and the ledgers."""
    import duckdb
    from pyiceberg.exceptions import NoSuchNamespaceError

    from orchestration import query

    try:
        con = query.connect(settings, namespaces=("prod", "ledger"))
    except NoSuchNamespaceError:
        con = query.connect(settings, namespaces=("prod",))
    published = set(query.published_tables(con)) | {
        r[0]
        for r in con.execute(
            "SELECT table_schema || '.' || table_name FROM information_schema.tables WHERE table_schema = 'ledger'"
        ).fetchall()
    }
    if not published:
        print("nothing is published yet: run `make demo`")
        return 0

    def section(title: str, table: str, render) -> None:
        if table not in published:
            print(f"{title:<14}{table} is not published yet")
            return
        try:
            render()
        except duckdb.Error as exc:  # a table of an older layout: say so, keep the other sections
            print(f"{title:<14}cannot read {table}: {str(exc).splitlines()[0]}")

    def checks() -> None:
        run_id, at = con.execute(
            "SELECT run_id, max(evaluated_at) FROM ledger.check_results GROUP BY run_id ORDER BY 2 DESC LIMIT 1"
        ).fetchone()
        passed, failed = con.execute(
            "SELECT count(*) FILTER (WHERE passed), count(*) FILTER (WHERE NOT passed) "
            "FROM ledger.check_results WHERE run_id = ?",
            [run_id],
        ).fetchone()
        print(f"{'Checks':<14}{passed} passed, {failed} failed (run {run_id[:8]}, {at:%Y-%m-%d %H:%M} UTC)")
        for table, check, blocking, summary in con.execute(
            "SELECT table_name, check_name, blocking, summary FROM ledger.check_results "
            "WHERE run_id = ? AND NOT passed ORDER BY blocking DESC, table_name, check_name LIMIT ?",
            [run_id, SUMMARY_ROWS],
        ).fetchall():
            kind = "blocking" if blocking else "warning"
            print(f"{'':<14}  {kind}: {table} {check}: {_clip(summary, 70)}")

    def champions() -> None:
        models = {
            (family, version): candidate
            for family, version, candidate in con.execute(
                "SELECT family, champion_version, candidate FROM ledger.model_outcomes WHERE status = 'promoted'"
            ).fetchall()
        }
        rows = con.execute(
            """
            SELECT family, status, detail,
                   (SELECT max_by(o.champion_version, o.recorded_at) FROM ledger.model_outcomes AS o
                    WHERE o.family = latest.family AND o.stage = 'promotion' AND o.champion_version IS NOT NULL)
            FROM (
                SELECT family, status, detail, row_number() OVER (PARTITION BY family ORDER BY recorded_at DESC) AS n
                FROM ledger.model_outcomes WHERE stage IN ('training', 'promotion')
            ) AS latest
            WHERE n = 1 ORDER BY family
            """
        ).fetchall()
        title = "Champions"
        for family, status, detail, version in rows:
            champion = f"v{version} ({models.get((family, version)) or 'model'})" if version else "none"
            last = {"promoted": "promoted by the last run", "champion_kept": "kept: the challenger lost"}.get(
                status, _clip(detail, 60)
            )
            print(f"{title:<14}{family:<12} champion {champion}; {last}")
            title = ""

    def review_queue() -> None:
        n = con.execute("SELECT count(*) FROM prod.high_risk_transactions").fetchone()[0]
        print(
            f"{'Review queue':<14}{n} high-risk payment{'s' if n != 1 else ''} to review (prod.high_risk_transactions)"
        )
        for rank, payment, score, amount in con.execute(
            "SELECT review_rank, payment_id, fraud_score, amount_usd FROM prod.high_risk_transactions "
            "ORDER BY review_rank LIMIT ?",
            [SUMMARY_ROWS],
        ).fetchall():
            print(f"{'':<14}  #{rank:<3} payment {payment:<10} score {score:.3f}  {amount:>10,.2f} USD")

    def low_stock() -> None:
        low, active = con.execute(
            "SELECT count(*) FILTER (WHERE low_stock), count(*) FROM prod.inventory_status WHERE is_active"
        ).fetchone()
        print(f"{'Low stock':<14}{low} of {active} active products (prod.inventory_status)")
        for sku, name, on_hand, cover in con.execute(
            "SELECT sku, name, quantity_on_hand, days_of_cover FROM prod.inventory_status "
            "WHERE is_active AND low_stock ORDER BY days_of_cover NULLS LAST, sku LIMIT ?",
            [SUMMARY_ROWS],
        ).fetchall():
            days = "no sales" if cover is None else f"{cover:.1f} days of cover"
            print(f"{'':<14}  {sku:<12} {_clip(name, 32):<32} {on_hand:>5} on hand, {days}")

    section("Checks", "ledger.check_results", checks)
    section("Champions", "ledger.model_outcomes", champions)
    section("Review queue", "prod.high_risk_transactions", review_queue)
    section("Low stock", "prod.inventory_status", low_stock)
    return 0


def _clip(text: str | None, width: int) -> str:
    text = " ".join((text or "").split())
    return text if len(text) <= width else text[: width - 3] + "..."


def cmd_mlflow_ui(args, settings: Settings) -> int:
    mlflow = Path(sys.executable).parent / "mlflow"
    cmd = [
        str(mlflow),
        "ui",
        "--host",
        "127.0.0.1",
        "--port",
        str(args.port),
        "--backend-store-uri",
        settings.mlflow_tracking_uri,
        "--default-artifact-root",
        settings.mlflow_artifact_root,
    ]
    return subprocess.call(cmd)


COMMANDS = {
    "generate": cmd_generate,
    "simulate": cmd_simulate,
    "sql": cmd_sql,
    "tables": cmd_tables,
    "prepare": cmd_prepare,
    "where": cmd_where,
    "summary": cmd_summary,
    "mlflow-ui": cmd_mlflow_ui,
    "scan-pans": cmd_scan_pans,
}

if __name__ == "__main__":
    sys.exit(main())
