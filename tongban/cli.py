"""`tongban`: the command line for people — run the suite, try it on a simulated city, operate it."""
from __future__ import annotations

import argparse
import json
import os
import sys
import warnings

# eventlet warns on import that it is deprecated; nameko 2.14 needs it (see DESIGN.md), users need not see it
warnings.filterwarnings("ignore", message=r"\s*Eventlet is deprecated")
# eventlet imports dnspython, which names DSA keys; cryptography (for the token keys) warns that DSA goes
warnings.filterwarnings("ignore", message="DSA is deprecated")


def _eventlet():
    # nameko runs on eventlet; patch before anything opens a socket
    import eventlet

    eventlet.monkey_patch()
    # containers and k8s stop with SIGTERM: stop as cleanly as on Ctrl-C
    import signal

    def _interrupt(_signum, _frame):
        raise KeyboardInterrupt

    signal.signal(signal.SIGTERM, _interrupt)


def _base_settings(args):
    from shared.config import Settings

    overrides = {}
    if getattr(args, "data_dir", None):
        overrides["data_dir"] = args.data_dir
    return Settings.from_env("cli", instance="tongban", **overrides)


DEV_MODE_NOTICE = ("{command} runs in DEVELOPMENT MODE (TONGBAN_DEV=1): every instance on this machine, "
                   "development keys and secrets (in the data folder) used when TONGBAN_TOKEN_* / "
                   "TONGBAN_BUS_SECRET are unset. "
                   "Not for real applicants' data.")


def _development_mode(command: str, stream=None) -> None:
    """`up` and `demo` are development tools: say so plainly, and let their services start with dev secrets."""
    os.environ["TONGBAN_DEV"] = "1"
    print(DEV_MODE_NOTICE.format(command=command), file=stream or sys.stdout, flush=True)


def cmd_up(args) -> int:
    _eventlet()
    _development_mode("tongban up")
    from shared.logging import configure_logging
    from tongban.runtime import Cluster, host_layout, wait_for_stop_signal

    configure_logging(os.environ.get("TONGBAN_LOG_LEVEL", "WARNING"))
    base = _base_settings(args)
    from shared.busauth import BusAuthError
    from tongban import bus_cmd

    try:
        bus_cmd.prepare(base)  # the services' broker users, every queue of the registry, the policy
    except BusAuthError as exc:
        print(f"tongban up: {exc}\n(or set TONGBAN_BUS_USERS=off to connect every service with TONGBAN_AMQP_URL "
              "as given)", file=sys.stderr)
        return 2
    departments = args.departments or _catalogue_departments(base)
    layout = host_layout(base, towns=args.towns, departments=departments, first_port=args.port)
    from tongban import local_outlets

    # our SMS gateway and SMTP server where no real ones are configured: notices land in files
    layout, outlets, landing = local_outlets.for_up(layout, base.data_dir)
    processes = args.processes
    first_user = _first_city_it_user(base)
    if processes > 1:
        from tongban.process_groups import ProcessCluster, process_groups

        cluster = ProcessCluster(base.data_dir / "run", os.environ.get("TONGBAN_LOG_LEVEL", "WARNING"))
        start, stop = (lambda: cluster.start_all(process_groups(layout, processes))), cluster.stop_all
    else:
        cluster = Cluster()
        start, stop = (lambda: cluster.start_all(layout)), cluster.stop
    try:
        start()
        from tongban.status_cmd import write_instances_file

        # `tongban status` finds the instances here (in k8s and compose: TONGBAN_PORTAL_UPSTREAMS)
        write_instances_file(base.data_dir, {s.instance: s.base_url for s in layout})
        portal = next(s for s in layout if s.service == "portal")
        print(f"portal: {portal.base_url}/   (sign in there)", flush=True)
        if first_user:
            print(f"  first city IT user: {first_user[0]}  password: {first_user[1]}  (shown once; "
                  "add people with `tongban user add`)", flush=True)
        for settings in layout:
            print(f"  {settings.instance:<22} {settings.base_url}   (/health, /metrics)", flush=True)
        for line in landing:
            print(line, flush=True)
        where = f" in {processes} processes" if processes > 1 else ""
        print(f"tongban is up: {len(layout)} instances{where}, data in {base.data_dir}, broker "
              f"{_safe(base.amqp_url)}. Ctrl-C stops it.", flush=True)
        wait_for_stop_signal()
        print("\nstopping…", flush=True)
    except KeyboardInterrupt:  # Ctrl-C while it was still starting
        print("\nstopping…", flush=True)
    finally:
        stop()
        if outlets is not None:
            outlets.stop()
    print("stopped.")
    return 0


def _processes(value: str) -> int:
    """--processes: a number, or auto: a process per kind of work (front, approval, notify and evaluation)
    where there are two cores or more, one where there is one (one eventlet process uses one core; three
    busy at different moments keep two cores busier than two would: bench/city.py)."""
    if value == "auto":
        return 3 if (os.cpu_count() or 1) >= 2 else 1
    if not value.isdigit() or int(value) < 1:
        raise argparse.ArgumentTypeError("a whole number of processes (1 or more), or auto")
    return int(value)


def cmd_serve_group(args) -> int:
    import eventlet

    eventlet.monkey_patch()
    from tongban.process_groups import serve_group

    return serve_group(args.spec)


def _first_city_it_user(base) -> tuple[str, str] | None:
    """On a directory with nobody in it, city IT's first account (its password printed once)."""
    import argparse

    from services.portal import directory
    from services.portal.directory_rules import new_password
    from tongban.user_cmd import portal_store

    store = portal_store(argparse.Namespace(data_dir=base.data_dir, database_url=None))
    try:
        with store.transaction() as tx:
            if directory.count_users(tx):
                return None
            password = new_password()
            directory.add_user(tx, "admin", "市信息中心管理员", "city_admin", "city", password, "tongban up")
            return "admin", password
    finally:
        store.dispose()


def _catalogue_departments(base) -> list[str]:
    """Every department of the catalogue in force gets its approval instance."""
    from shared.reference import StreamClient

    return sorted(StreamClient(base.amqp_url, base.bus_prefix).catalogs().active().departments)


def cmd_serve(args) -> int:
    _eventlet()
    from shared.config import Settings
    from shared.logging import configure_logging
    from tongban.runtime import Cluster, wait_for_stop_signal

    configure_logging(os.environ.get("TONGBAN_LOG_LEVEL", "INFO"))
    settings = Settings.from_env(args.service, town=args.town, department=args.department, http_port=args.port,
                                 instance=args.instance or os.environ.get("TONGBAN_INSTANCE")
                                 or _default_instance(args))
    from shared.config import secret_problems

    if secret_problems(settings):  # one clear line, not a traceback from inside the container
        from shared.config import InsecureSettings, check_secrets

        try:
            check_secrets(settings)
        except InsecureSettings as exc:
            print(f"tongban serve: {exc}", file=sys.stderr)
        return 2
    cluster = Cluster()
    try:
        cluster.start(settings)
        wait_for_stop_signal()
    except KeyboardInterrupt:
        pass
    finally:
        cluster.stop()
    return 0


def _default_instance(args) -> str:
    if args.service == "intake" and args.town:
        return f"intake-{args.town}"
    if args.service == "approval" and args.department:
        return f"approval-{args.department}"
    return args.service


def cmd_demo(args) -> int:
    _eventlet()
    _development_mode("tongban demo", stream=sys.stderr)  # stdout stays the summary (--json)
    from tongban.demo import run_demo

    summary = run_demo(cases=args.cases, as_json=args.json, keep=args.keep)
    if args.json:
        print(json.dumps(summary, ensure_ascii=False, default=str))
    return 0 if summary["reconciled"] else 1


def cmd_token(args) -> int:
    """A token for scripts, signed with the portal's key (TONGBAN_TOKEN_PRIVATE_KEY; in development mode the
    data folder's development key): city IT's tool, on the host that keeps the key."""
    from shared import auth, tokens
    from shared.config import Settings

    try:
        # the staff directory's rule: a role works only in scopes of its kinds (a clerk in a town, ...)
        if args.role in auth.ROLES and not auth.scope_fits_role(args.role, auth.parse_scope(args.scope)):
            kinds = " or ".join(auth.ROLE_SCOPE_KINDS[args.role])
            raise ValueError(f"a {args.role} works in a {kinds} scope, not {args.scope!r}")
        key = Settings.from_env("cli", instance="tongban").signing_key()
        if key is None:
            print("tongban token: no signing key: set TONGBAN_TOKEN_PRIVATE_KEY to the portal's key (a file), "
                  "or TONGBAN_DEV=1 on a development machine", file=sys.stderr)
            return 2
        token = tokens.issue(key, args.subject, args.role, args.scope, ttl_seconds=args.ttl, name=args.name)
    except ValueError as exc:
        print(f"tongban token: {exc}", file=sys.stderr)
        return 2
    print(token)
    return 0


def cmd_dlq(args) -> int:
    from amqp.exceptions import NotFound

    from shared import deadletters
    from shared.config import Settings

    settings = Settings.from_env("tongban", instance="tongban")
    mgmt = os.environ.get("TONGBAN_MANAGEMENT_URL")
    try:
        if args.action == "list":
            queues = [{"queue": args.queue, "messages": deadletters.depth(settings.amqp_url, args.queue)}] \
                if args.queue else deadletters.list_queues(settings.amqp_url, settings.bus_prefix, mgmt)
            report = []
            for q in queues:
                letters = deadletters.peek(settings.amqp_url, q["queue"], args.limit)
                report.append({**q, "peek": [d.as_dict() for d in letters]})
            if args.json:
                print(json.dumps(report, ensure_ascii=False))
            else:
                if not report:
                    print("no dead-letter queues")
                for q in report:
                    print(f"{q['queue']}: {q['messages']} message(s)")
                    for d in q["peek"]:
                        print(f"    {d['message_id']}  {d['type']}  case {d['case_number']}  "
                              f"failed in {d['failed_queue']} ({d['reason']}, {d['count']}x)")
        elif args.action == "replay":
            # at most what is there now: what fails again meanwhile comes back to this queue's end
            done = deadletters.replay(settings.amqp_url, args.queue, args.limit)
            print(f"replayed {done.moved} message(s) from {args.queue} of {done.present} present")
        elif args.action == "purge":
            if not args.yes and not sys.stdin.isatty():
                print(f"tongban dlq: not purging {args.queue}: purge asks for confirmation and stdin is not a "
                      "terminal; add --yes to purge without asking", file=sys.stderr)
                return 2

            def ask(present: int) -> bool:
                try:
                    answer = input(f"purge {present} dead letter(s) from {args.queue}? [y/N] ")
                except EOFError:
                    answer = ""
                return answer.strip().lower() in ("y", "yes")

            n = deadletters.purge(settings.amqp_url, args.queue, confirm=None if args.yes else ask)
            if n is None:
                print(f"nothing purged from {args.queue}")
                return 1
            print(f"purged {n} message(s) from {args.queue}")
    except deadletters.DeadLetterError as exc:
        print(f"tongban dlq: {exc}", file=sys.stderr)
        return 2
    except NotFound as exc:
        print(f"tongban dlq: no such queue ({exc.reply_text if hasattr(exc, 'reply_text') else exc})",
              file=sys.stderr)
        return 2
    return 0


def cmd_ledger(args) -> int:
    from sqlalchemy.orm import Session

    from services.intake.views import verify_ledger
    from shared.config import Settings
    from shared.db import make_engine

    settings = Settings.from_env("intake", instance=args.instance or f"intake-{args.town}", town=args.town,
                                 database_url=args.database_url)
    engine = make_engine(settings.db_url)
    try:
        with Session(engine) as session:
            report = verify_ledger(session)
    finally:
        engine.dispose()
    if args.json:
        print(json.dumps(report, ensure_ascii=False))
    elif report["broken"]:
        print(f"TAMPERED: {len(report['broken'])} of {report['cases']} cases have a broken history chain:")
        for number, seq in sorted(report["broken"].items()):
            print(f"  {number}: history entry {seq} does not match its hash")
    else:
        print(f"ok: the history of all {report['cases']} cases verifies")
    return 1 if report["broken"] else 0


def _safe(url: str) -> str:
    from shared.platform import _safe_url

    return _safe_url(url)


def build_parser() -> argparse.ArgumentParser:
    from tongban.runtime import DEFAULT_TOWNS

    p = argparse.ArgumentParser(prog="tongban", description="全城通办: any town centre takes any application.")
    sub = p.add_subparsers(dest="command", required=True)

    up = sub.add_parser("up", help="run the whole suite on this host")
    up.add_argument("--towns", nargs="+", default=list(DEFAULT_TOWNS))
    up.add_argument("--departments", nargs="+", default=None,
                    help="approval instances to run (default: every department of the catalogue)")
    up.add_argument("--port", type=int, default=8100, help="first HTTP port, the portal's (default 8100)")
    up.add_argument("--data-dir", help="where the SQLite files live (default $TONGBAN_DATA_DIR or ./var)")
    up.add_argument("--processes", default="auto", type=_processes,
                    help="processes to run the instances in: a number, or auto (3 on two cores or more, else 1)")
    up.set_defaults(func=cmd_up)
    group = sub.add_parser("serve-group")  # a child process of `up --processes` (not for people: no help)
    group.add_argument("spec")
    group.set_defaults(func=cmd_serve_group)

    serve = sub.add_parser("serve", help="run one service instance (containers, k8s)")
    serve.add_argument("service", choices=["intake", "approval", "agent", "notify", "evaluation", "portal"])
    serve.add_argument("--town")
    serve.add_argument("--department")
    serve.add_argument("--instance")
    serve.add_argument("--port", type=int)
    serve.set_defaults(func=cmd_serve)

    demo = sub.add_parser("demo", help="run the suite against a simulated city and reconcile the books")
    demo.add_argument("--cases", type=int, default=300)
    demo.add_argument("--json", action="store_true", help="print the summary as one JSON object")
    demo.add_argument("--keep", action="store_true", help="keep the demo's data folder and queues")
    demo.set_defaults(func=cmd_demo)

    token = sub.add_parser("token", help="mint a bearer token for a user")
    token.add_argument("--subject", required=True, help="staff id or user name")
    token.add_argument("--role", required=True)
    token.add_argument("--scope", required=True, help="city | town:CODE | department:CODE[@TOWN] | village:CODE")
    token.add_argument("--name", help="the person's name, as notices print it (首问负责人), e.g. 张敏")
    token.add_argument("--ttl", type=int, default=8 * 3600, help="seconds (default 8 h)")
    token.set_defaults(func=cmd_token)

    dlq = sub.add_parser("dlq", help="dead letters: list, replay, purge")
    dlq.add_argument("action", choices=["list", "replay", "purge"])
    dlq.add_argument("queue", nargs="?", help="a dead-letter queue (name ends in .dlq)")
    dlq.add_argument("--limit", type=int, default=None, help="list: letters shown per queue; replay: at most this many")
    dlq.add_argument("--json", action="store_true")
    dlq.add_argument("--yes", "-y", action="store_true", help="purge without asking (needed with no terminal)")
    dlq.set_defaults(func=cmd_dlq)

    ledger = sub.add_parser("ledger", help="the case ledger: verify its hash-chained history")
    ledger.add_argument("action", choices=["verify"])
    ledger.add_argument("--town", required=True, help="the centre's town code")
    ledger.add_argument("--instance", help="instance name (default intake-TOWN)")
    ledger.add_argument("--database-url", help="default: $TONGBAN_DATABASE_URL or the instance's SQLite file")
    ledger.add_argument("--json", action="store_true")
    ledger.set_defaults(func=cmd_ledger)

    from tongban import (
        bus_cmd,
        calendar_cmd,
        catalog_cmd,
        deploy_cmd,
        keys_cmd,
        pii_audit,
        report_cmd,
        status_cmd,
        user_cmd,
    )

    user_cmd.register(sub)
    bus_cmd.register(sub)
    catalog_cmd.register(sub)
    calendar_cmd.register(sub)
    report_cmd.register(sub)
    keys_cmd.register(sub)
    status_cmd.register(sub)
    pii_audit.register(sub)
    deploy_cmd.register(sub)
    return p


def main(argv=None) -> int:
    # Patch before the parser imports anything: the parser's modules import nameko, kombu and amqp, and a
    # module that took `from time import sleep` (kombu's reconnect loop) before the patch keeps the blocking
    # one. After a broker restart that sleep held a whole process of instances in 1 s stalls, every other
    # connection's handshake timed out, and the process never reconnected (found by bench/chaos.py).
    import eventlet

    eventlet.monkey_patch()
    parser = build_parser()
    args = parser.parse_args(argv)
    if args.command == "dlq":
        if args.action in ("replay", "purge") and not args.queue:
            parser.error(f"dlq {args.action} needs the queue name")
        if args.action == "list" and args.limit is None:
            args.limit = 10
    try:
        return args.func(args)
    except BrokenPipeError:  # `tongban catalog list | head`: the reader left; that is not an error
        os.dup2(os.open(os.devnull, os.O_WRONLY), sys.stdout.fileno())
        return 0


if __name__ == "__main__":
    sys.exit(main())
