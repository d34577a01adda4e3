"""Monthly tables as files: the month a report covers, the formats it is asked in, and the CSV and XLSX
writing every report shares (the agent's village table, evaluation's monthly figures).

CSV is UTF-8 with a byte-order mark (Excel shows Chinese headings right only with it). An XLSX sheet has
a title row, a subtitle row, the headings (bold, filled, frozen with the title) and bordered rows; totals
and subtotals are bold. Nothing here reads a database.
"""
from __future__ import annotations

import csv
import io
import re
from collections.abc import Iterable, Sequence
from dataclasses import dataclass
from datetime import date

from shared.errors import RuleViolation

FORMATS: dict[str, str] = {
    "json": "application/json",
    "csv": "text/csv; charset=utf-8",
    "xlsx": "application/vnd.openxmlformats-officedocument.spreadsheetml.sheet",
}

_MONTH_RE = re.compile(r"(\d{4})-(\d{2})")


@dataclass(frozen=True)
class Month:
    """A calendar month of Asia/Shanghai dates: [first, end)."""

    year: int
    month: int

    @property
    def first(self) -> date:
        return date(self.year, self.month, 1)

    @property
    def end(self) -> date:
        return date(self.year + self.month // 12, self.month % 12 + 1, 1)

    @classmethod
    def of(cls, day: date) -> Month:
        return cls(day.year, day.month)

    def __str__(self) -> str:
        return f"{self.year:04d}-{self.month:02d}"


def parse_month(text: str | None) -> Month:
    m = _MONTH_RE.fullmatch((text or "").strip())
    if not m or not 1 <= int(m.group(2)) <= 12 or int(m.group(1)) < 1900:
        raise RuleViolation(f"month must be YYYY-MM (e.g. 2026-11), not {text!r}",
                            {"month": ["a month as YYYY-MM"]})
    return Month(int(m.group(1)), int(m.group(2)))


def parse_format(text: str | None) -> str:
    fmt = (text or "json").strip().lower()
    if fmt not in FORMATS:
        raise RuleViolation(f"format must be one of {', '.join(FORMATS)}, not {text!r}", {"format": list(FORMATS)})
    return fmt


def csv_bytes(headings: Sequence, rows: Iterable[Sequence]) -> bytes:
    """The rows under their headings, as UTF-8 with a byte-order mark."""
    buf = io.StringIO()
    writer = csv.writer(buf)
    writer.writerow(headings)
    writer.writerows(rows)
    return buf.getvalue().encode("utf-8-sig")


def sheet_title(name: str, taken: set[str]) -> str:
    """A sheet name Excel takes: at most 31 characters, none of []:*?/\\ , unique in the workbook."""
    base = re.sub(r"[\[\]:*?/\\]", "_", name)[:31] or "sheet"
    title, n = base, 2
    while title in taken:
        suffix = f"({n})"
        title, n = base[:31 - len(suffix)] + suffix, n + 1
    taken.add(title)
    return title


class XlsxBook:
    """A workbook of report sheets, each with the report's title, a subtitle and frozen headings.

        book = XlsxBook("村(社区)便民服务办理情况统计表（2026年10月）")
        ws = book.sheet("玉山镇", "统计月份：2026-10", ["村(社区)", ...], [16, ...])
        book.add(ws, [...]); book.add(ws, [...], "total")
        data = book.save()
    """

    def __init__(self, title: str):
        from openpyxl import Workbook
        from openpyxl.styles import Alignment, Border, Font, PatternFill, Side

        self.title = title
        self.bold = Font(bold=True)
        self.head_fill = PatternFill("solid", fgColor="DDEBF7")
        self.total_fill = PatternFill("solid", fgColor="FFF2CC")
        thin = Side(style="thin", color="999999")
        self.border = Border(left=thin, right=thin, top=thin, bottom=thin)
        self.center = Alignment(horizontal="center", vertical="center")
        self._title_font = Font(bold=True, size=14)
        self.wb = Workbook()
        self.wb.remove(self.wb.active)
        self._taken: set[str] = set()

    def sheet(self, name: str, subtitle: str, headings: Sequence[str], widths: Sequence[float]):
        from openpyxl.utils import get_column_letter

        ws = self.wb.create_sheet(sheet_title(name, self._taken))
        ws.append([self.title])
        ws.merge_cells(start_row=1, start_column=1, end_row=1, end_column=len(headings))
        ws.cell(1, 1).font = self._title_font
        ws.cell(1, 1).alignment = self.center
        ws.row_dimensions[1].height = 24
        ws.append([subtitle])
        ws.merge_cells(start_row=2, start_column=1, end_row=2, end_column=len(headings))
        ws.append(list(headings))
        for col, width in enumerate(widths, start=1):
            cell = ws.cell(3, col)
            cell.font, cell.fill, cell.border, cell.alignment = self.bold, self.head_fill, self.border, self.center
            ws.column_dimensions[get_column_letter(col)].width = width
        ws.freeze_panes = "A4"  # the title and the headings stay while scrolling
        return ws

    def add(self, ws, row: Sequence, emphasis: str | None = None) -> None:
        """One row; `emphasis` "subtotal" (bold) or "total" (bold, filled)."""
        ws.append(list(row))
        for cell in ws[ws.max_row]:
            cell.border = self.border
            if emphasis is not None:
                cell.font = self.bold
                if emphasis == "total":
                    cell.fill = self.total_fill

    def save(self) -> bytes:
        buf = io.BytesIO()
        self.wb.save(buf)
        return buf.getvalue()
