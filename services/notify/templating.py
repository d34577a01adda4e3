"""Notify's texts per notice kind and channel: Jinja2 files city IT may edit without code changes.

    templates/sms/<kind>.txt.j2          the SMS (the operator's sign 【…】 is put in front by the channel)
    templates/email/<kind>.subject.j2    the e-mail's subject (one line)
    templates/email/<kind>.body.j2       the e-mail's body (the notice's PDF is attached)

`TONGBAN_NOTIFY_TEMPLATES` names a folder searched first (same layout): a copy there replaces the shipped
file, a file not copied stays the shipped one. Every template is loaded with StrictUndefined and rendered
once with sample data when notify starts: a template that does not render stops the start with its file
name (TemplateProblem), not a delivery at 2 a.m.

What a template may use (nothing else: an unknown name is an error at start):
    name           the applicant's name                 case_number   受理号
    title          the notice's title (受理通知书 …)     kind          acceptance, result …
    text           the centre's text of the notice, ID and phone numbers masked (a leading 【…】 is replaced
                   by the configured SMS sign on the SMS channel)
    town           the accepting centre's town code     sign          the SMS sign name (may be empty)
"""
from __future__ import annotations

from pathlib import Path

import jinja2

from shared.vocabulary import NoticeKind

BUILT_IN = Path(__file__).parent / "templates"
KINDS = tuple(str(k) for k in NoticeKind)
SAMPLE = {"name": "张三", "case_number": "320583101-20260105-00001", "title": "受理通知书", "kind": "acceptance",
          "text": "您申请的“结婚登记”已受理，受理号320583101-20260105-00001。", "town": "320583101",
          "sign": "全城通办"}


class TemplateProblem(RuntimeError):
    """A notice template is missing or does not render: names the file and what is wrong."""


def files_for(kind: str) -> dict[str, str]:
    return {"sms": f"sms/{kind}.txt.j2", "email_subject": f"email/{kind}.subject.j2",
            "email_body": f"email/{kind}.body.j2"}


class Templates:
    """Every notice kind's templates, loaded and test-rendered at once."""

    def __init__(self, override: str | Path | None = None):
        folders = ([str(override)] if override else []) + [str(BUILT_IN)]
        if override and not Path(override).is_dir():
            raise TemplateProblem(f"TONGBAN_NOTIFY_TEMPLATES={override}: no such folder")
        self.env = jinja2.Environment(loader=jinja2.FileSystemLoader(folders), undefined=jinja2.StrictUndefined,
                                      autoescape=False, keep_trailing_newline=False)
        self._loaded: dict[tuple[str, str], jinja2.Template] = {}
        for kind in KINDS:
            for part, name in files_for(kind).items():
                self._loaded[(kind, part)] = self._load(name, kind)

    def _where(self, name: str) -> str:
        try:
            source = self.env.loader.get_source(self.env, name)
            return source[1] or name
        except jinja2.TemplateNotFound:
            return name

    def _load(self, name: str, kind: str) -> jinja2.Template:
        try:
            template = self.env.get_template(name)
            template.render(**{**SAMPLE, "kind": kind})
        except jinja2.TemplateNotFound:
            raise TemplateProblem(f"notice template {name} is missing (looked in "
                                  f"{', '.join(self.env.loader.searchpath)})") from None
        except jinja2.TemplateSyntaxError as exc:
            raise TemplateProblem(f"notice template {exc.filename or self._where(name)}, line {exc.lineno}: "
                                  f"{exc.message}") from None
        except Exception as exc:  # StrictUndefined, a filter that fails, …
            raise TemplateProblem(f"notice template {self._where(name)} does not render: "
                                  f"{type(exc).__name__}: {exc}") from None
        return template

    def render(self, notice_kind: str, part: str, /, **values) -> str:
        """`part`: sms, email_subject or email_body."""
        text = self._loaded[(notice_kind, part)].render(**values).strip()
        return " ".join(text.split()) if part == "email_subject" else text
