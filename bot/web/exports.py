"""Exports of the filtered case list (CSV and XLSX) and "for the council" (no personal data at all).

Contact details are never in an export: they are on the case page only, for who may act on the case.
The case export leaves out the description and the contact details; the council export also the title
(a resident's free text can name people) and the initiatiefmakelaar.

CSV is written for Dutch Excel: UTF-8 with a byte order mark (so Excel reads the accents right) and
``;`` between fields (Excel in a Dutch locale splits on it, as the comma is its decimal separator);
dates as 2026-11-30, amounts with a decimal comma. Both exports stream: the CSV batch by batch as the
rows come from the database, the XLSX through openpyxl's write-only mode (rows go to a temporary file,
not into memory), built in a worker thread so the event loop keeps serving.
"""

from __future__ import annotations

import asyncio
import csv
import io
import tempfile
from collections.abc import AsyncIterator, Callable, Iterable, Sequence
from dataclasses import dataclass
from datetime import date, datetime
from typing import IO, Any

import openpyxl
from aiohttp import web
from openpyxl.cell import WriteOnlyCell
from openpyxl.cell.cell import ILLEGAL_CHARACTERS_RE
from openpyxl.styles import Font
from openpyxl.utils import get_column_letter

from bot.i18n import TIMEZONE
from bot.web.site import SITE, VIEWER, Site, Viewer
from flows.lifecycle import Status, is_final, staff_label
from flows.municipality import Municipality
from flows.stalls import AMSTERDAM, status_standing, working_days_between
from flows.text import Msg, t
from storage import audit
from storage import case_list as case_list_store
from storage.case_list import CaseListRow, StatusStep
from storage.db import reading
from storage.reports import CaseFilter, Scope, parse_filter

Cell = str | int | float | date | None
# Statuses whose time is counted in the council export: every status a case can wait in.
COUNTED_STATUSES = tuple(s.value for s in Status if not is_final(s))
CSV_CHUNK_ROWS = 1000


@dataclass(frozen=True)
class Column:
    """A column of an export: its header and how its cells are typed ("text", "int", "date", "euro")."""

    header: str
    kind: str = "text"
    width: int = 14


# --- the rows --------------------------------------------------------------------------------------


def case_columns(render: Callable[[Msg], str]) -> tuple[Column, ...]:
    """The case export's columns: what the case list shows, no contact details, no description."""
    return (
        Column(render(t("Reference")), width=16),
        Column(render(t("Title")), width=40),
        Column(render(t("Wijk")), width=20),
        Column(render(t("Theme")), width=20),
        Column(render(t("Status")), width=22),
        Column(render(t("Department")), width=20),
        Column(render(t("Initiatiefmakelaar")), width=20),
        Column(render(t("Submitted")), "date", 12),
        Column(render(t("In this status since")), "date", 12),
        Column(render(t("Working days in this status")), "int", 10),
        Column(render(t("Norm (working days)")), "int", 10),
        Column(render(t("Working days over the norm")), "int", 10),
        Column(render(t("Amount (euro)")), "euro", 12),
        Column(render(t("Neighbours taking part")), "int", 10),
    )


@dataclass(frozen=True)
class Names:
    """How codes are shown in the viewer's language."""

    m: Municipality
    language: str
    render: Callable[[Msg], str]

    def wijk(self, code: str | None) -> str:
        wijk = self.m.wijk(code) if code else None
        return wijk.name if wijk else (code or "")

    def theme(self, code: str) -> str:
        theme = self.m.theme(code)
        return theme.label(self.language) if theme else code

    def department(self, code: str | None) -> str:
        department = self.m.department(code) if code else None
        return department.name if department else (code or "")

    def status(self, code: str) -> str:
        return self.render(staff_label(code))


def amsterdam_date(moment: datetime) -> date:
    return moment.astimezone(AMSTERDAM).date()


def case_cells(row: CaseListRow, names: Names, now: datetime) -> list[Cell]:
    """One case as a row of the case export."""
    standing = status_standing(row.facts, names.m, now)
    return [
        row.reference,
        row.title,
        names.wijk(row.wijk_code),
        names.theme(row.theme_code),
        names.status(row.status),
        names.department(row.department) if row.status == Status.BIJ_GEMEENTE else "",
        row.broker_name or "",
        amsterdam_date(row.created_at),
        amsterdam_date(row.status_changed_at),
        working_days_between(row.status_changed_at, now, names.m.closing_days),
        standing.norm if standing else None,
        standing.over if standing else None,
        row.amount_cents / 100 if row.amount_cents is not None else None,
        row.neighbours,
    ]


def council_columns(m: Municipality, render: Callable[[Msg], str]) -> tuple[Column, ...]:
    """Reference, wijk, theme, status and dates; working days per status; working days per department."""
    names = Names(m, "", render)
    head = (
        Column(render(t("Reference")), width=16),
        Column(render(t("Wijk")), width=20),
        Column(render(t("Theme")), width=20),
        Column(render(t("Status")), width=22),
        Column(render(t("Submitted")), "date", 12),
        Column(render(t("Last status change")), "date", 12),
    )
    per_status = tuple(
        Column(render(t("Working days: {status}", status=names.status(code))), "int", 12)
        for code in COUNTED_STATUSES
    )
    per_department = tuple(
        Column(render(t("Working days waiting on {department}", department=d.name)), "int", 12)
        for d in m.departments
    )
    return head + per_status + per_department


def days_per_status(
    row: CaseListRow, history: Sequence[StatusStep], m: Municipality, now: datetime
) -> tuple[dict[str, int], dict[str, int]]:
    """Working days the case spent in each status and waited on each department, from its status
    changes (the current status counts up to ``now``; a final status is not counted)."""
    steps = list(history) or [StatusStep(row.id, row.status_changed_at, row.status, row.department)]
    statuses: dict[str, int] = {}
    departments: dict[str, int] = {}
    for i, step in enumerate(steps):
        if is_final(step.status):
            continue
        end = steps[i + 1].at if i + 1 < len(steps) else now
        days = working_days_between(step.at, end, m.closing_days)
        statuses[step.status] = statuses.get(step.status, 0) + days
        if step.status == Status.BIJ_GEMEENTE and step.department:
            departments[step.department] = departments.get(step.department, 0) + days
    return statuses, departments


def council_cells(row: CaseListRow, history: Sequence[StatusStep], names: Names, now: datetime) -> list[Cell]:
    """One case as a row of the council export: no name, contact, title or description."""
    statuses, departments = days_per_status(row, history, names.m, now)
    return [
        row.reference,
        names.wijk(row.wijk_code),
        names.theme(row.theme_code),
        names.status(row.status),
        amsterdam_date(row.created_at),
        amsterdam_date(row.status_changed_at),
        *(statuses.get(code) for code in COUNTED_STATUSES),
        *(departments.get(d.code) for d in names.m.departments),
    ]


# --- files -------------------------------------------------------------------------------------------


def csv_text(value: Cell) -> str:
    """A cell as Dutch Excel reads it: ISO dates, decimal comma, empty for nothing."""
    if value is None:
        return ""
    if isinstance(value, date):
        return value.isoformat()
    if isinstance(value, float):
        return f"{value:.2f}".replace(".", ",")
    return str(value)


def csv_bytes(rows: Iterable[Sequence[Cell]], *, bom: bool = False) -> bytes:
    """Rows as CSV for Dutch Excel: ``;`` separated, CRLF, quoted where needed; with the BOM first."""
    out = io.StringIO()
    writer = csv.writer(out, delimiter=";", lineterminator="\r\n")
    for row in rows:
        writer.writerow([_no_formula(csv_text(v)) for v in row])
    text = ("\ufeff" if bom else "") + out.getvalue()
    return text.encode("utf-8")


def _no_formula(text: str) -> str:
    """A resident's title starting with = + - @ would run as a formula in Excel: keep it text."""
    return "'" + text if text[:1] in ("=", "+", "-", "@", "\t", "\r") else text


class XlsxSheet:
    """An XLSX workbook of one sheet, written row by row to a temporary file (openpyxl write-only):
    a bold, frozen header row, an auto filter over the whole table, dates and numbers as such."""

    def __init__(self, title: str, columns: Sequence[Column]) -> None:
        self._columns = tuple(columns)
        self._book = openpyxl.Workbook(write_only=True)
        self._sheet = self._book.create_sheet(title[:31])
        self._sheet.freeze_panes = "A2"
        for i, column in enumerate(self._columns, start=1):
            self._sheet.column_dimensions[get_column_letter(i)].width = column.width
        bold = Font(bold=True)
        header = []
        for column in self._columns:
            cell = WriteOnlyCell(self._sheet, value=column.header)
            cell.font = bold
            header.append(cell)
        self._sheet.append(header)
        self.rows = 0

    def add(self, rows: Iterable[Sequence[Cell]]) -> None:
        # Plain values where openpyxl's defaults are right (a cell object each costs time on 100,000 rows).
        for row in rows:
            cells: list[Any] = []
            for column, value in zip(self._columns, row, strict=True):
                if value is None:
                    cells.append(None)
                elif column.kind == "date" or column.kind == "euro":
                    cell = WriteOnlyCell(self._sheet, value=value)
                    cell.number_format = "yyyy-mm-dd" if column.kind == "date" else "#,##0.00"
                    cells.append(cell)
                elif isinstance(value, str) and value.startswith("="):
                    cell = WriteOnlyCell(self._sheet, value=value)
                    cell.data_type = "s"  # text, never a formula, whatever a resident typed
                    cells.append(cell)
                elif isinstance(value, str):
                    # Control characters are not allowed in XLSX text; openpyxl would refuse the row.
                    cells.append(ILLEGAL_CHARACTERS_RE.sub("", value))
                else:
                    cells.append(value)
            self._sheet.append(cells)
            self.rows += 1

    def save(self, target: IO[bytes]) -> None:
        last = get_column_letter(len(self._columns))
        self._sheet.auto_filter.ref = f"A1:{last}{self.rows + 1}"
        self._book.save(target)


# --- the handlers --------------------------------------------------------------------------------------

CSV_TYPE = "text/csv"
XLSX_TYPE = "application/vnd.openxmlformats-officedocument.spreadsheetml.sheet"
STREAM_CHUNK = 64 * 1024


def add_routes(app: web.Application) -> None:
    app.router.add_get("/dashboard/export/cases.csv", cases_csv)
    app.router.add_get("/dashboard/export/cases.xlsx", cases_xlsx)
    app.router.add_get("/dashboard/export/council.csv", council_csv)
    app.router.add_get("/dashboard/export/council.xlsx", council_xlsx)


@dataclass(frozen=True)
class Export:
    """One export request: the viewer's scope and filter, the moment, names in the viewer's language."""

    site: Site
    viewer: Viewer
    f: CaseFilter
    now: datetime
    names: Names

    @classmethod
    def of(cls, request: web.Request) -> Export:
        site: Site = request.app[SITE]
        viewer: Viewer = request[VIEWER]
        f, _ = parse_filter(request.query, site.municipality)
        language = viewer.language

        def render(msg: Msg) -> str:
            return site.translator.render(msg, language)

        return cls(site, viewer, f, site.clock(), Names(site.municipality, language, render))

    @property
    def scope(self) -> Scope:
        return self.viewer.scope

    def filename(self, kind: str, extension: str) -> str:
        day = self.now.astimezone(TIMEZONE).date().isoformat()
        middle = "-raad" if kind == "council" else ""
        return f"initiatieven{middle}-{self.site.municipality.code}-{day}.{extension}"

    async def audit(self, action: str) -> None:
        """Count what goes out and write it to the audit log before the first byte is sent."""
        async with self.site.sessions() as session, session.begin():
            count = await case_list_store.count_cases(
                session, self.scope, self.f, self.site.municipality, self.now
            )
            await audit.record(
                session,
                staff_id=self.viewer.staff.id,
                action=action,
                detail=f"{count} cases",
                now=self.now,
            )

    async def rows(self, council: bool) -> AsyncIterator[list[list[Cell]]]:
        """The export's rows in batches, read from a reading session (never waits for the writer)."""
        m = self.site.municipality
        async with reading(self.site.sessions) as session:
            async for batch in case_list_store.iter_cases(session, self.scope, self.f, m, now=self.now):
                if council:
                    history = await case_list_store.status_history(session, [r.id for r in batch])
                    yield [council_cells(r, history[r.id], self.names, self.now) for r in batch]
                else:
                    yield [case_cells(r, self.names, self.now) for r in batch]

    def columns(self, council: bool) -> tuple[Column, ...]:
        if council:
            return council_columns(self.site.municipality, self.names.render)
        return case_columns(self.names.render)


def _attachment(filename: str, content_type: str) -> dict[str, str]:
    return {
        "Content-Type": content_type,
        "Content-Disposition": f'attachment; filename="{filename}"',
        "Cache-Control": "no-store",
    }


async def _csv(request: web.Request, *, council: bool) -> web.StreamResponse:
    export = Export.of(request)
    await export.audit("export_council" if council else "export_csv")
    headers = _attachment(
        export.filename("council" if council else "cases", "csv"), f"{CSV_TYPE}; charset=utf-8"
    )
    response = web.StreamResponse(headers=headers)
    await response.prepare(request)
    await response.write(csv_bytes([[c.header for c in export.columns(council)]], bom=True))
    async for batch in export.rows(council):
        await response.write(csv_bytes(batch))
    await response.write_eof()
    return response


async def _xlsx(request: web.Request, *, council: bool) -> web.StreamResponse:
    export = Export.of(request)
    await export.audit("export_council" if council else "export_xlsx")
    title = export.names.render(t("For the council") if council else t("Initiatives"))
    sheet = XlsxSheet(title, export.columns(council))
    with tempfile.SpooledTemporaryFile(max_size=8 * 1024 * 1024) as spool:
        async for batch in export.rows(council):
            await asyncio.to_thread(sheet.add, batch)
        await asyncio.to_thread(sheet.save, spool)
        size = spool.tell()
        spool.seek(0)
        headers = _attachment(export.filename("council" if council else "cases", "xlsx"), XLSX_TYPE)
        headers["Content-Length"] = str(size)
        response = web.StreamResponse(headers=headers)
        await response.prepare(request)
        while chunk := spool.read(STREAM_CHUNK):
            await response.write(chunk)
    await response.write_eof()
    return response


async def cases_csv(request: web.Request) -> web.StreamResponse:
    return await _csv(request, council=False)


async def cases_xlsx(request: web.Request) -> web.StreamResponse:
    return await _xlsx(request, council=False)


async def council_csv(request: web.Request) -> web.StreamResponse:
    return await _csv(request, council=True)


async def council_xlsx(request: web.Request) -> web.StreamResponse:
    return await _xlsx(request, council=True)
