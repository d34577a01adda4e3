"""`tongban user add|list|disable|enable|reset-password|audit`: city IT's hand on the staff directory.

It works on the portal's database (TONGBAN_DATABASE_URL, or the portal's SQLite file in the data folder),
as city IT does on the portal's host; a disable or a reset leaves in the portal's outbox the token
revocations every service applies (sent by the running portal within a second, or when it next starts).
"""
from __future__ import annotations

import getpass
import json
import sys

from shared.config import Settings


def portal_store(args):
    from services.portal.service import VERSIONS
    from shared.bus import Topology
    from shared.store import Store

    overrides = {"data_dir": args.data_dir} if getattr(args, "data_dir", None) else {}
    settings = Settings.from_env("portal", instance="portal", **overrides)
    if getattr(args, "database_url", None):
        settings = settings.with_(database_url=args.database_url)
    store = Store(settings.db_url, VERSIONS, Topology.of(settings).events.name)
    store.migrate()
    return store


def _password(args) -> tuple[str, bool]:
    """The password and whether it was made here (then it is printed once; one given is never echoed)."""
    if getattr(args, "password_stdin", False):
        return sys.stdin.readline().rstrip("\n"), False
    if getattr(args, "generate", False) or not sys.stdin.isatty():
        from services.portal.directory_rules import new_password

        return new_password(), True
    first = getpass.getpass("password: ")
    if getpass.getpass("again: ") != first:
        raise ValueError("the two passwords differ")
    return first, False


def cmd_user(args) -> int:
    from services.portal import directory
    from services.portal.directory_rules import DirectoryError

    store = portal_store(args)
    actor = "cli"
    try:
        with store.transaction() as tx:
            if args.action == "list":
                rows = directory.list_users(tx)
                if args.json:
                    print(json.dumps(rows, ensure_ascii=False, default=str))
                else:
                    for u in rows:
                        state = "disabled" if u["disabled"] else ("locked" if u["locked_until"] else "active")
                        print(f"{u['staff_number']:<20} {u['name']:<8} {u['role']:<16} {u['scope']:<32} {state}")
                return 0
            if args.action == "audit":
                for a in directory.audit_log(tx, args.limit):
                    print(f"{a['at']:%Y-%m-%d %H:%M:%S}  {a['staff_number']:<20} {a['event']:<22} "
                          f"by {a['actor']:<12} {a['remote'] or '':<16} {a['detail'] or ''}")
                return 0
            if not args.staff_number:
                print(f"tongban user {args.action}: give the staff number", file=sys.stderr)
                return 2
            if args.action == "add":
                if not (args.name and args.role and args.scope):
                    print("tongban user add: --name, --role and --scope are required", file=sys.stderr)
                    return 2
                password, generated = _password(args)
                directory.add_user(tx, args.staff_number, args.name, args.role, args.scope, password, actor)
                print(f"added {args.staff_number} ({args.name}, {args.role}, {args.scope})")
                if generated:
                    print(f"password (shown once): {password}")
            elif args.action in ("disable", "enable"):
                directory.set_disabled(tx, args.staff_number, args.action == "disable", actor)
                print(f"{args.staff_number} {args.action}d; every service refuses their tokens"
                      if args.action == "disable" else f"{args.staff_number} enabled; older tokens stay void")
            elif args.action == "reset-password":
                password, generated = _password(args)
                directory.reset_password(tx, args.staff_number, password, actor)
                print(f"password of {args.staff_number} reset; their sessions ended, older tokens void")
                if generated:
                    print(f"password (shown once): {password}")
    except (DirectoryError, ValueError) as exc:
        print(f"tongban user {args.action}: {exc}", file=sys.stderr)
        return 2
    except LookupError as exc:
        print(f"tongban user {args.action}: {exc.args[0]}", file=sys.stderr)
        return 1
    finally:
        store.dispose()
    return 0


def register(sub) -> None:
    user = sub.add_parser("user", help="the staff directory: add, list, disable, enable, reset-password, audit")
    user.add_argument("action", choices=["add", "list", "disable", "enable", "reset-password", "audit"])
    user.add_argument("staff_number", nargs="?", help="工号 (the tokens' subject)")
    user.add_argument("--name", help="the person's name, e.g. 张敏")
    user.add_argument("--role", help="clerk | approver | department_head | agent | town_agent | supervisor | "
                                     "city_admin")
    user.add_argument("--scope", help="city | town:CODE | department:CODE[@TOWN] | village:CODE")
    user.add_argument("--generate", action="store_true", help="make a password and print it once")
    user.add_argument("--password-stdin", action="store_true", help="read the password from stdin")
    user.add_argument("--limit", type=int, default=50, help="audit: entries shown")
    user.add_argument("--json", action="store_true")
    user.add_argument("--data-dir", help="the data folder of the portal's SQLite file (default $TONGBAN_DATA_DIR)")
    user.add_argument("--database-url", help="the portal's database (default $TONGBAN_DATABASE_URL)")
    user.set_defaults(func=cmd_user)
