"""Portal pages: city IT (市信息中心): the instances' health, the staff directory, the reference data the
portal holds. Entrypoints only; the rules are in admin_rules (no I/O) and directory."""
from __future__ import annotations

from datetime import UTC, datetime

import requests

from services.portal import admin_rules as rules
from services.portal import directory
from services.portal.directory_rules import DirectoryError, new_password
from services.portal.pages import Page, View, page
from shared.catalog import CatalogError
from shared.reference import CALENDAR, CATALOG, Conflict, make_record, record_message
from shared.workdays import HolidayFileError, today_in_shanghai

ADMIN = ("city_admin",)
AUDIT_SHOWN = 50
MAX_REFERENCE_BYTES = 2_000_000  # a city's catalogue is some tens of kilobytes
HEALTH_TIMEOUT = 3.0  # seconds per instance: the overview must not hang on one that is down


class AdminPages:
    """Mixed into the portal service (services/portal/service.py); its @page / @api methods are entrypoints."""

    # --- overview -------------------------------------------------------------------------------

    @page("GET", "/admin", roles=ADMIN)
    def admin_home(self, view: View):
        """The instances the portal calls, each with its /health answer, and the directory's size."""
        lines = []
        for instance, url in sorted(self.upstreams.urls.items()):
            try:
                r = self.upstreams.http.get(url.rstrip("/") + "/health", timeout=HEALTH_TIMEOUT)
                try:
                    body = r.json()
                except ValueError:
                    body = None
                lines.append(rules.instance_health(instance, url, r.status_code, body))
            except requests.RequestException as exc:
                lines.append(rules.instance_health(instance, url, None, type(exc).__name__))
        with self.platform.store.transaction() as tx:
            users = directory.list_users(tx)
        return Page("admin/home.html.j2", {
            "title": "系统概况", "instances": rules.health_order(lines),
            "down": sum(1 for h in lines if h.state != "ok"), "user_count": len(users),
            "disabled_count": sum(1 for u in users if u["disabled"])})

    # --- the staff directory --------------------------------------------------------------------

    def _users_page(self, view: View, status: int = 200, form: dict | None = None, errors: dict | None = None,
                    flash: str = "", problem: str = "", shown_password: tuple[str, str] | None = None):
        with self.platform.store.transaction() as tx:
            users = directory.list_users(tx)
            entries = directory.audit_log(tx, AUDIT_SHOWN)
        return status, Page("admin/users.html.j2", {
            "title": "人员管理", "users": [(u, *rules.user_state(u)) for u in users], "audit": entries,
            "roles": rules.PERSON_ROLES, "scope_help": rules.SCOPE_HELP,
            "form": form or {k: "" for k in rules.FORM_FIELDS}, "errors": errors or {},
            "flash": flash, "problem": problem, "shown_password": shown_password})

    @page("GET", "/admin/users", roles=ADMIN)
    def admin_users(self, view: View):
        return self._users_page(view)

    @page("POST", "/admin/users", roles=ADMIN)
    def admin_add_user(self, view: View):
        """Add a person; an empty password makes one, shown once on the answer."""
        values = rules.new_user_form(view.form)
        password = values["password"] or new_password()
        try:
            with self.platform.store.transaction() as tx:
                added = directory.add_user(tx, values["staff_number"], values["name"], values["role"],
                                           values["scope"], password, view.user.staff_number)
        except DirectoryError as exc:
            field, message = rules.field_problem(str(exc))
            return self._users_page(view, 400, form={**values, "password": ""}, errors={field: message},
                                    problem=f"未添加：{message}")
        shown = (added["staff_number"], password) if not values["password"] else None
        return self._users_page(view, flash=f"已添加 {added['name']}（{added['staff_number']}）。",
                                shown_password=shown)

    @page("POST", "/admin/users/state", roles=ADMIN)
    def admin_user_state(self, view: View):
        """Disable (their sessions end, every service refuses their tokens within seconds) or enable."""
        number, action = view.form.get("staff_number") or "", view.form.get("action")
        if action not in ("disable", "enable"):
            return self._users_page(view, 400, problem="未知操作。")
        if action == "disable" and number == view.user.staff_number:
            return self._users_page(view, 400, problem="不能停用自己的账号（请另一位管理员操作）。")
        try:
            with self.platform.store.transaction() as tx:
                user = directory.set_disabled(tx, number, action == "disable", view.user.staff_number)
        except LookupError:
            return self._users_page(view, 404, problem=f"没有工号 {number}。")
        done = ("已停用，其会话已结束，各服务将拒绝其令牌。" if action == "disable"
                else "已启用，此前签发的令牌仍然无效。")
        return self._users_page(view, flash=f"{user['name']}（{user['staff_number']}）{done}")

    @page("POST", "/admin/users/reset-password", roles=ADMIN)
    def admin_reset_password(self, view: View):
        """A new generated password, shown once; the person's sessions end and older tokens are void."""
        number = view.form.get("staff_number") or ""
        password = new_password()
        try:
            with self.platform.store.transaction() as tx:
                user = directory.reset_password(tx, number, password, view.user.staff_number)
        except LookupError:
            return self._users_page(view, 404, problem=f"没有工号 {number}。")
        return self._users_page(view, flash=f"{user['name']}（{user['staff_number']}）的密码已重置，其会话已结束。",
                                shown_password=(user["staff_number"], password))

    # --- reference data -------------------------------------------------------------------------

    @page("GET", "/admin/reference", roles=ADMIN)
    def admin_reference(self, view: View):
        """The catalogue versions and calendar years in the portal's replica of the reference stream."""
        return self._reference_page()

    @page("POST", "/admin/reference", roles=ADMIN)
    def admin_reference_load(self, view: View):
        """Load a catalogue (事项目录) or a year's holiday calendar: checked here as `tongban catalog|calendar load`
        checks it, then published through the portal's outbox into the reference stream, where every service
        takes it within seconds (a catalogue becomes the active version). The same file again changes nothing;
        a catalogue version already loaded with other content is refused."""
        kind = view.form.get("kind")
        upload = view.request.files.get("file")
        if kind not in (CATALOG, CALENDAR):
            return self._reference_page(400, problem="请选择要加载的是事项目录还是工作日历。")
        raw = upload.read(MAX_REFERENCE_BYTES + 1) if upload else b""
        if not raw:
            return self._reference_page(400, problem="请选择要加载的文件（YAML）。")
        if len(raw) > MAX_REFERENCE_BYTES:
            return self._reference_page(400, problem=f"文件过大（上限 {MAX_REFERENCE_BYTES // 1_000_000} MB）。")
        try:
            record = make_record(kind, raw.decode("utf-8"), loaded_by=f"{view.user.staff_number}@portal")
        except UnicodeDecodeError:
            return self._reference_page(400, problem="文件不是 UTF-8 编码的文本。")
        except (CatalogError, HolidayFileError, ValueError) as exc:
            return self._reference_page(400, problem=f"文件未通过校验，未加载：{exc}")
        what = f"事项目录 {record.version} 版" if kind == CATALOG else f"{record.version} 年工作日历"
        try:
            new = self.platform.reference.book.check(record)
        except Conflict as exc:
            return self._reference_page(409, problem=f"未加载：{exc}")
        if not new:
            return self._reference_page(flash=f"{what}已加载过（内容相同），无变化。")
        with self.platform.store.transaction() as tx:
            tx.publish(*record_message(record))
            directory.audit(tx, view.user.staff_number, "reference.loaded", view.user.staff_number,
                            detail=f"{kind} {record.version} {record.sha256[:12]}")
        return self._reference_page(flash=f"已发布{what}，各服务将在数秒内收到并启用。")

    def _reference_page(self, status: int = 200, flash: str = "", problem: str = ""):
        reference = self.platform.reference
        catalogs = reference.catalogs
        return status, Page("admin/reference.html.j2", {
            "title": "事项目录与工作日历", "flash": flash, "problem": problem,
            "catalogues": rules.catalogue_lines(catalogs.versions(), catalogs.active_version(),
                                                reference.book.of(CATALOG)),
            "active_catalogue": catalogs.active_version(),
            "years": rules.calendar_lines(reference.calendar.loaded_years, reference.book.calendar_years(),
                                          today_in_shanghai(datetime.now(UTC)).year)})
