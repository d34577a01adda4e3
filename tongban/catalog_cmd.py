"""`tongban catalog …`: city IT reads, checks and publishes the item catalogue (事项目录).

The commands talk to the running deployment: every version is a record on its reference stream
(`shared.reference`; broker and bus prefix from TONGBAN_AMQP_URL and TONGBAN_BUS_PREFIX). `load`
publishes a file (with publisher confirms) unless the stream has it already; `list`, `show` and
`versions` read the stream. The active version is the last one loaded. Every handler takes the parsed
`args` and returns the exit code: 0 done, 2 refused (invalid file, unknown version or item, a version
loaded before with other content, no broker), with the reason on stderr.
"""
from __future__ import annotations

import json
import sys

from shared.catalog import (
    CASE_KINDS,
    CATEGORIES,
    Catalog,
    CatalogError,
    parse_catalog,
)
from shared.reference import CATALOG, Catalogs, Conflict, StreamClient

KIND_NAMES = {"instant": "即办件", "promised": "承诺件", "joint": "联办件", "escalated": "上报件",
              "consultation": "咨询告知件"}
LEVEL_NAMES = {"village": "村(社区)", "town": "镇(街道)", "city": "市"}
DELIVERY_NAMES = {"pickup": "窗口领取", "mail": "EMS邮寄"}
FORM_NAMES = {"original": "原件", "copy": "复印件", "both": "原件和复印件"}


def open_stream() -> StreamClient:
    """The deployment's reference stream, as the admin the AMQP URL names (who may publish to it)."""
    from shared.config import Settings

    settings = Settings.from_env("tongban", instance="tongban")
    return StreamClient(settings.amqp_url, settings.bus_prefix)


class BrokerUnreachable(Exception):
    pass


def _catalogs() -> Catalogs:
    try:
        return open_stream().catalogs()
    except Exception as exc:  # kombu/amqp errors come in many classes; all mean the same to city IT
        raise BrokerUnreachable(_broker_problem(exc)) from None


def _broker_problem(exc: Exception) -> str:
    return (f"cannot read the deployment's reference stream ({exc.__class__.__name__}: {exc}); "
            "check TONGBAN_AMQP_URL and TONGBAN_BUS_PREFIX")


def _fail(command: str, message: str, problems: list[str] | None = None) -> int:
    print(f"tongban catalog {command}: {message}", file=sys.stderr)
    for line in problems or []:
        print("  - " + str(line).replace("\n", "\n    "), file=sys.stderr)
    return 2


def _error(command: str, exc: CatalogError) -> int:
    if exc.problems and exc.details is not None:
        return _fail(command, exc.message, exc.problems)
    return _fail(command, str(exc))


def yuan(fen: int) -> str:
    return "免费" if not fen else f"{fen // 100}.{fen % 100:02d}元"


def _days(item: dict) -> str:
    return f"{item['promised_days']}/{item['statutory_days']}"


def _catalog(args, command: str) -> Catalog | int:
    try:
        s = _catalogs()
        return s.get(args.version) if getattr(args, "version", None) else s.active()
    except CatalogError as exc:
        return _error(command, exc)
    except BrokerUnreachable as exc:
        return _fail(command, str(exc))


def _width(text: str) -> int:
    """Columns a string takes in a terminal: CJK characters take two."""
    return sum(2 if ord(ch) > 0x2E7F else 1 for ch in text)


def _pad(text: str, width: int) -> str:
    return text + " " * max(0, width - _width(text))


# -- list ---------------------------------------------------------------------------------------
def cmd_list(args) -> int:
    catalog = _catalog(args, "list")
    if isinstance(catalog, int):
        return catalog
    if args.department and args.department not in catalog.departments:
        known = ", ".join(catalog.departments)
        return _fail("list", f"no department {args.department!r} in catalogue version {catalog.version} "
                             f"(known: {known})")
    items = [i for i in catalog.data["items"]
             if (not args.kind or i["kind"] == args.kind)
             and (not args.category or i["category"] == args.category)
             and (not args.department or i["department"] == args.department)]
    if args.json:
        print(json.dumps({"version": catalog.version, "items": [_row(i) for i in items]}, ensure_ascii=False))
        return 0
    rows = [[i["code"], i["name"], f"{i['kind']} {KIND_NAMES[i['kind']]}", i["department"], i["level"],
             _days(i), yuan(i["fee_fen"])] for i in items]
    header = ["code", "name", "kind", "department", "level", "days(promised/statutory)", "fee"]
    widths = [max([_width(h)] + [_width(r[k]) for r in rows]) for k, h in enumerate(header)]
    print("  ".join(_pad(h, w) for h, w in zip(header, widths, strict=True)).rstrip())
    for r in rows:
        print("  ".join(_pad(c, w) for c, w in zip(r, widths, strict=True)).rstrip())
    print(f"{len(items)} of {len(catalog.data['items'])} items, catalogue version {catalog.version}")
    return 0


def _row(item: dict) -> dict:
    return {k: item[k] for k in ("code", "name", "category", "kind", "department", "level", "promised_days",
                                 "statutory_days", "fee_fen")}


# -- show ---------------------------------------------------------------------------------------
def cmd_show(args) -> int:
    catalog = _catalog(args, "show")
    if isinstance(catalog, int):
        return catalog
    item = catalog.item(args.code)
    if item is None:
        return _fail("show", f"no item {args.code!r} in catalogue version {catalog.version}")
    if args.json:
        print(json.dumps({"version": catalog.version, "item": item}, ensure_ascii=False))
        return 0
    depts = catalog.departments

    def dept(code):
        return f"{depts[code]['name']} ({code})" if code in depts else code

    print(f"{item['code']}  {item['name']}   (catalogue version {catalog.version})")
    lines = [
        ("category", f"{item['category']} · {item['item_type']}"),
        ("department", dept(item["department"])),
        ("co-departments", ", ".join(dept(d) for d in item["co_departments"]) if item["co_departments"] else None),
        ("level", f"{item['level']} {LEVEL_NAMES[item['level']]}"),
        ("kind", f"{item['kind']} {KIND_NAMES[item['kind']]}" + ("  (decided by catalogue rule)"
                                                              if item["auto_decide"] else "")),
        ("time limit", f"promised {item['promised_days']} working days, statutory {item['statutory_days']}"),
        ("fee", yuan(item["fee_fen"]) + (f"  basis: {item['fee_basis']}" if item["fee_basis"] else "")),
        ("in person", "yes, the applicant must come in person" if item["in_person"] else "no"),
        ("village agent", "may submit (代办)" if item["agent_allowed"] else "may not submit"),
        ("city-wide", "yes (全城通办)" if item["city_wide"] else "no, only at the applicant's own town"),
        ("delivery", ", ".join(f"{d} {DELIVERY_NAMES[d]}" for d in item["delivery"])),
        ("legal basis", item["basis"]),
        ("where to go", item["guide"]),
    ]
    for label, value in lines:
        if value:
            print(f"  {label:<15} {value}")
    print(f"  materials ({len(item['materials'])}):" if item["materials"] else "  materials       none")
    for m in item["materials"]:
        flags = ["required" if m["required"] else "optional", FORM_NAMES[m["form"]]]
        if m["deferrable"]:
            flags.append("may follow later (容缺)")
        print(f"    - {m['code']}: {m['name']}  [{', '.join(flags)}]  issued by {m['issuer']}")
    return 0


# -- validate, load, versions -------------------------------------------------------------------
def _read(path: str, command: str) -> str | int:
    try:
        with open(path, encoding="utf-8") as f:
            return f.read()
    except (OSError, UnicodeDecodeError) as exc:
        return _fail(command, f"cannot read {path}: {exc}")


def cmd_validate(args) -> int:
    text = _read(args.file, "validate")
    if isinstance(text, int):
        return text
    try:
        catalog = parse_catalog(text)
    except CatalogError as exc:
        return _fail("validate", f"{args.file} is not a valid catalogue: {exc.message}", exc.problems)
    print(f"valid: {catalog.summary_line()}")
    return 0


def cmd_load(args) -> int:
    text = _read(args.file, "load")
    if isinstance(text, int):
        return text
    try:
        parse_catalog(text)
    except CatalogError as exc:
        return _fail("load", f"{args.file} is not a valid catalogue: {exc.message}", exc.problems)
    stream = open_stream()
    try:
        record, published = stream.load(CATALOG, text)
    except Conflict as exc:
        return _fail("load", str(exc))
    except Exception as exc:
        return _fail("load", _broker_problem(exc))
    catalog = parse_catalog(text)
    if published:
        print(f"{catalog.version}: loaded, now active — {catalog.summary_line()} "
              f"(published to {stream.prefix}'s reference stream)")
    else:
        active = _catalogs().active_version()
        print(f"{catalog.version}: already loaded (same content), nothing published; active version: {active}")
    return 0


def cmd_versions(args) -> int:
    try:
        catalogs = _catalogs()
        active = catalogs.active_version()
        rows = [{"version": v, "active": v == active, "items": len(catalogs.get(v).data["items"])}
                for v in catalogs.versions()]
    except CatalogError as exc:
        return _error("versions", exc)
    except BrokerUnreachable as exc:
        return _fail("versions", str(exc))
    if args.json:
        print(json.dumps(rows, ensure_ascii=False))
        return 0
    if not rows:
        print("no catalogue loaded on this deployment yet (tongban catalog load FILE, or tongban bus declare "
              "for the shipped sample)")
    for r in rows:
        mark = "*" if r["active"] else " "
        note = "  (active)" if r["active"] else ""
        print(f"{mark} {r['version']}  {r['items']} items{note}")
    return 0


def register(subparsers) -> None:
    """Add `catalog` and its subcommands to the `tongban` parser's subparsers."""
    cat = subparsers.add_parser("catalog", help="the item catalogue: list, show, validate, load, versions")
    sub = cat.add_subparsers(dest="catalog_command", required=True)

    ls = sub.add_parser("list", help="items of the active catalogue")
    ls.add_argument("--kind", choices=CASE_KINDS)
    ls.add_argument("--category", choices=CATEGORIES)
    ls.add_argument("--department", help="department code, e.g. minzheng")
    ls.add_argument("--version", help="a loaded version instead of the active one")
    ls.add_argument("--json", action="store_true")
    ls.set_defaults(func=cmd_list)

    show = sub.add_parser("show", help="one item: materials, limits, fee, flags")
    show.add_argument("code", help="item code, e.g. MZ-0001")
    show.add_argument("--version", help="a loaded version instead of the active one")
    show.add_argument("--json", action="store_true")
    show.set_defaults(func=cmd_show)

    val = sub.add_parser("validate", help="check a catalogue file without loading it")
    val.add_argument("file")
    val.set_defaults(func=cmd_validate)

    load = sub.add_parser("load", help="publish a catalogue file as a new version (the active one) to the deployment")
    load.add_argument("file")
    load.set_defaults(func=cmd_load)

    versions = sub.add_parser("versions", help="the loaded versions in load order; * marks the active one")
    versions.add_argument("--json", action="store_true")
    versions.set_defaults(func=cmd_versions)
