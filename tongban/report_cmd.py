"""`tongban report village`: the monthly village table (村(社区)便民服务办理情况统计表), read from the agent's
database (the one `tongban serve agent` uses: TONGBAN_DATABASE_URL, or the SQLite file under
TONGBAN_DATA_DIR), with the village names of the catalogue that database holds.

`tongban report monthly`: the monthly figures (便民服务月度统计表) per village, window, staff, town and
department, read from the evaluation service's database the same way (names from its catalogue when it
holds one, codes otherwise); `--town` or `--dept` narrows them as the HTTP report does.

CSV goes to stdout unless `--output` names a file; XLSX always goes to a file (by default
village-<month>[-<town>].xlsx or monthly-<month>[-<town>|-<dept>].xlsx in the current folder). Exit 0 done,
2 refused (bad month, bad town or department, no database, no catalogue), with one line on stderr.
"""
from __future__ import annotations

import sys
from pathlib import Path


def _fail(message: str, kind: str = "village") -> int:
    print(f"tongban report {kind}: {message}", file=sys.stderr)
    return 2


def cmd_report(args) -> int:
    if args.kind == "monthly":
        return cmd_monthly(args)
    if args.dept:
        return _fail("--dept is for the monthly figures")
    import sqlalchemy as sa
    from sqlalchemy.orm import Session

    from services.agent import views
    from shared.config import Settings
    from shared.db import load_reference, make_engine
    from shared.errors import RuleViolation
    from shared.reference import Book, Catalogs, NoCatalog

    try:
        month = views.parse_month(args.month)
    except RuleViolation as exc:
        return _fail(exc.message)
    settings = Settings.from_env("agent", instance="agent", database_url=args.database_url)
    url = settings.db_url
    if url.startswith("sqlite"):
        path = url.split("///", 1)[-1]
        if not Path(path).is_file():
            return _fail(f"no agent database at {path} (set TONGBAN_DATA_DIR or TONGBAN_DATABASE_URL)")
    engine = make_engine(url)
    try:
        try:
            catalog = Catalogs(Book(load_reference(engine)[0])).active()
            with Session(engine) as session:
                report = views.village_report(session, catalog, month, args.town)
        except NoCatalog:
            return _fail("the agent database holds no catalogue yet (the agent service keeps one once it has run)")
        except RuleViolation as exc:
            return _fail(exc.message)
        except sa.exc.SQLAlchemyError as exc:
            reason = str(getattr(exc, "orig", None) or exc).strip().splitlines()[0]
            return _fail(f"cannot read the agent database {_safe(url)}: {reason}")
    finally:
        engine.dispose()

    data = views.render(report, args.format)
    if args.output == "-" or (args.output is None and args.format == "csv"):
        if args.format != "csv":
            return _fail("an XLSX file is not for a terminal: give --output FILE")
        sys.stdout.buffer.write(data)
        sys.stdout.flush()
        return 0
    out = Path(args.output or views.filename(report, args.format))
    try:
        out.write_bytes(data)
    except OSError as exc:
        return _fail(f"cannot write {out}: {exc.strerror or exc}")
    total = report["total"] if report["total"] is not None else report["towns"][0]["total"]
    villages = sum(len(t["villages"]) for t in report["towns"])
    print(f"wrote {out}: {report['month']}, {len(report['towns'])} town(s), {villages} villages, "
          f"{total['services']} services, {total['replies']} replies", file=sys.stderr)
    return 0


def _write(data: bytes, args, default_name: str, kind: str) -> Path | None | int:
    """stdout (CSV) or a file; the file written, None for stdout, or the exit code of a refusal."""
    if args.output == "-" or (args.output is None and args.format == "csv"):
        if args.format != "csv":
            return _fail("an XLSX file is not for a terminal: give --output FILE", kind)
        sys.stdout.buffer.write(data)
        sys.stdout.flush()
        return None
    out = Path(args.output or default_name)
    try:
        out.write_bytes(data)
    except OSError as exc:
        return _fail(f"cannot write {out}: {exc.strerror or exc}", kind)
    return out


def cmd_monthly(args) -> int:
    import sqlalchemy as sa
    from sqlalchemy.orm import Session

    from services.evaluation import figures
    from shared.config import Settings
    from shared.db import load_reference, make_engine
    from shared.errors import RuleViolation
    from shared.reference import Book, Catalogs, NoCatalog

    def fail(message):
        return _fail(message, "monthly")

    settings = Settings.from_env("evaluation", instance="evaluation", database_url=args.database_url)
    url = settings.db_url
    if url.startswith("sqlite"):
        path = url.split("///", 1)[-1]
        if not Path(path).is_file():
            return fail(f"no evaluation database at {path} (set TONGBAN_DATA_DIR or TONGBAN_DATABASE_URL)")
    engine = make_engine(url)
    try:
        try:
            try:
                catalog = Catalogs(Book(load_reference(engine)[0])).active()
            except (NoCatalog, sa.exc.SQLAlchemyError):  # names are a courtesy: the codes will do
                catalog = None
            with Session(engine) as session:
                report = figures.monthly_report(session, args.month, args.town, args.dept,
                                                figures.names_from(catalog))
        except RuleViolation as exc:
            return fail(exc.message)
        except sa.exc.SQLAlchemyError as exc:
            reason = str(getattr(exc, "orig", None) or exc).strip().splitlines()[0]
            return fail(f"cannot read the evaluation database {_safe(url)}: {reason}")
    finally:
        engine.dispose()
    out = _write(figures.render(report, args.format), args, figures.filename(report, args.format), "monthly")
    if isinstance(out, int):
        return out
    if out is not None:
        rows = {d["heading"]: len(d["rows"]) for d in report["dimensions"]}
        print(f"wrote {out}: {report['month']}, " + ", ".join(f"{n} {h}" for h, n in rows.items()), file=sys.stderr)
    return 0


def _safe(url: str) -> str:
    from shared.platform import _safe_url

    return _safe_url(url)


def register(sub) -> None:
    report = sub.add_parser("report", help="reports: the monthly village table (村(社区)便民服务办理情况统计表), "
                                           "the monthly figures (便民服务月度统计表)")
    report.add_argument("kind", choices=["village", "monthly"])
    report.add_argument("--month", required=True, help="YYYY-MM (Asia/Shanghai dates)")
    narrow = report.add_mutually_exclusive_group()
    narrow.add_argument("--town", help="one town's table (default: every town and the city's total)")
    narrow.add_argument("--dept", help="monthly: one department's figures: CODE (every office), CODE@TOWN or "
                                       "CODE@city (one office)")
    report.add_argument("--format", choices=["csv", "xlsx"], default="csv")
    report.add_argument("--output", help="the file to write (default: CSV to stdout, XLSX to "
                                         "village-<month>[-<town>].xlsx or monthly-<month>[…].xlsx); '-' for stdout")
    report.add_argument("--database-url", help="default: $TONGBAN_DATABASE_URL or the service's SQLite file "
                                               "(the agent's for village, evaluation's for monthly)")
    report.set_defaults(func=cmd_report)
