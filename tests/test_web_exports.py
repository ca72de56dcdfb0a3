"""Exports of the case list (CSV for Dutch Excel, XLSX) and for the council: right rows, right types,
the viewer's scope, no contact details, and every export in the audit log."""

from __future__ import annotations

import csv
import io
from collections.abc import AsyncIterator
from datetime import date, datetime, timedelta
from pathlib import Path

import openpyxl
import pytest_asyncio
from sqlalchemy import select

from bot.web.exports import Column, XlsxSheet, csv_bytes, days_per_status
from storage import initiatives as initiatives_store
from storage.case_list import CaseListRow, StatusStep
from storage.staff import StaffRow
from storage.tables import audit_log
from tests.web_support import NOW, WebWorld, web_world


@pytest_asyncio.fixture
async def web(tmp_path: Path) -> AsyncIterator[WebWorld]:
    async with web_world(f"sqlite+aiosqlite:///{tmp_path / 'web.db'}") as world:
        yield world


PERSONAL = ("Fatima", "0612345678", "fatima@example.org", "Twee bankjes", "Bankjes bij de speeltuin")


async def seeded(web: WebWorld) -> tuple[str, str, StaffRow]:
    """A coordinator (English) logged in, one case with a broker in wijk 1 and one without in wijk 2."""
    m = web.municipality
    coordinator = await web.add_staff("Carla", language="en")
    bram = await web.add_staff("Bram", role="broker")
    first = await web.add_case(
        broker=bram, contact_phone="0612345678", contact_email="fatima@example.org", amount_cents=45_050
    )
    web.clock.advance(timedelta(days=1))
    second = await web.add_case(wijk_code=m.wijken[1].code, title="Moestuin")
    await web.login(coordinator)
    return first, second, coordinator


async def test_the_csv_is_for_dutch_excel_and_holds_the_filtered_list(web: WebWorld) -> None:
    first, second, _ = await seeded(web)
    response = await web.client.get("/dashboard/export/cases.csv")
    assert response.status == 200
    assert response.headers["Content-Type"].startswith("text/csv")
    today = NOW.date() + timedelta(days=1)
    assert (
        f'filename="initiatieven-{web.municipality.code}-{today.isoformat()}.csv"'
        in (response.headers["Content-Disposition"])
    )
    body = await response.read()
    assert body.startswith("\ufeff".encode())
    rows = list(csv.reader(io.StringIO(body.decode("utf-8-sig")), delimiter=";"))
    assert rows[0][:3] == ["Reference", "Title", "Neighbourhood"]
    assert [r[0] for r in rows[1:]] == [first, second]
    by_reference = {r[0]: r for r in rows[1:]}
    assert by_reference[first][6] == "Bram" and by_reference[first][12] == "450,50"
    assert by_reference[first][7] == NOW.date().isoformat()
    text = body.decode("utf-8-sig")
    assert "Fatima" not in text and "0612345678" not in text and "fatima@example.org" not in text
    filtered = await web.client.get(f"/dashboard/export/cases.csv?wijk={web.municipality.wijken[1].code}")
    lines = (await filtered.read()).decode("utf-8-sig").strip().split("\r\n")
    assert len(lines) == 2 and lines[1].startswith(second)


async def test_the_xlsx_reads_back_with_dates_numbers_a_frozen_header_and_a_filter(web: WebWorld) -> None:
    first, second, _ = await seeded(web)
    response = await web.client.get("/dashboard/export/cases.xlsx")
    assert response.status == 200 and "spreadsheetml" in response.headers["Content-Type"]
    assert response.headers["Content-Disposition"].endswith('.xlsx"')
    book = openpyxl.load_workbook(io.BytesIO(await response.read()))
    sheet = book.active
    assert sheet is not None
    rows = list(sheet.iter_rows(values_only=True))
    assert rows[0][0] == "Reference" and [r[0] for r in rows[1:]] == [first, second]
    submitted = rows[1][7]
    assert isinstance(submitted, datetime) and submitted.date() == NOW.date()
    assert rows[1][12] == 450.5 and isinstance(rows[1][9], int)
    assert sheet.freeze_panes == "A2"
    assert sheet.auto_filter.ref == f"A1:N{len(rows)}"
    assert all("Fatima" not in str(v) for r in rows for v in r)


async def test_the_council_export_has_no_personal_data_and_counts_days_per_status(web: WebWorld) -> None:
    first, _, coordinator = await seeded(web)
    async with web.runtime.sessions() as session, session.begin():
        case = await initiatives_store.load_case(session, first)
        assert case is not None
        await initiatives_store.change_status(
            session,
            case.id,
            status="bij_gemeente",
            now=web.clock(),
            actor_role="broker",
            actor_user_id=None,
            staff_id=None,
            note="Mag dit?",
            department="vergunningen",
        )
    web.clock.advance(timedelta(days=7))
    await web.login(coordinator)  # the session of a week ago has ended
    for extension in ("csv", "xlsx"):
        response = await web.client.get(f"/dashboard/export/council.{extension}")
        assert response.status == 200
        assert "initiatieven-raad-" in response.headers["Content-Disposition"]
        body = await response.read()
        if extension == "csv":
            rows = list(csv.reader(io.StringIO(body.decode("utf-8-sig")), delimiter=";"))
        else:
            sheet = openpyxl.load_workbook(io.BytesIO(body)).active
            assert sheet is not None
            rows = [["" if v is None else str(v) for v in r] for r in sheet.iter_rows(values_only=True)]
        flat = " ".join(" ".join(r) for r in rows)
        for personal in PERSONAL:
            assert personal not in flat
        header = rows[0]
        row = next(r for r in rows if r[0] == first)
        assert row[header.index("Working days waiting on Vergunningen")] == "5"
        assert header[:4] == ["Reference", "Neighbourhood", "Theme", "Status"]


async def test_exports_follow_the_viewers_scope_and_are_audited(web: WebWorld) -> None:
    m = web.municipality
    north = await web.add_staff("Noor", wijken=[m.wijken[0].code], language="en")
    await web.add_staff("Sam", wijken=[m.wijken[1].code])
    ours = await web.add_case()
    await web.add_case(wijk_code=m.wijken[1].code)
    await web.login(north)
    for path in ("cases.csv", "cases.xlsx", "council.csv"):
        response = await web.client.get(f"/dashboard/export/{path}")
        assert response.status == 200
    body = (await (await web.client.get("/dashboard/export/cases.csv")).read()).decode("utf-8-sig")
    assert [line.split(";")[0] for line in body.strip().split("\r\n")[1:]] == [ours]
    async with web.runtime.sessions() as session, session.begin():
        conn = await session.connection()
        entries = [tuple(r) for r in await conn.execute(select(audit_log.c.action, audit_log.c.detail))]
    exports = [e for e in entries if e[0].startswith("export")]
    assert exports == [
        ("export_csv", "1 cases"),
        ("export_xlsx", "1 cases"),
        ("export_council", "1 cases"),
        ("export_csv", "1 cases"),
    ]


def test_csv_cells_keep_a_formula_as_text() -> None:
    data = csv_bytes([["=HYPERLINK(1)", 3, date(2026, 1, 2), 1.5, None]]).decode()
    assert data == "'=HYPERLINK(1);3;2026-01-02;1,50;\r\n"


def test_days_per_status_add_up_the_history_and_the_department_waits() -> None:
    from tests.test_case_list import M

    t0 = datetime(2026, 11, 2, 10, tzinfo=NOW.tzinfo)  # Monday
    row = CaseListRow(
        1, "INI-2026-0001", "x", None, "groen", "gerealiseerd", t0, t0, None, 7, "B", t0, t0, None, None
    )
    history = [
        StatusStep(1, t0, "ingediend", None),
        StatusStep(1, t0 + timedelta(days=1), "bij_gemeente", "groen"),  # Tuesday
        StatusStep(1, t0 + timedelta(days=8), "in_gesprek", None),  # Tuesday a week later
        StatusStep(1, t0 + timedelta(days=9), "bij_gemeente", "groen"),
        StatusStep(1, t0 + timedelta(days=10), "gerealiseerd", None),
    ]
    statuses, departments = days_per_status(row, history, M, t0 + timedelta(days=30))
    assert statuses == {"ingediend": 1, "bij_gemeente": 6, "in_gesprek": 1}
    assert departments == {"groen": 6}


def test_xlsx_text_that_looks_like_a_formula_stays_text_and_control_characters_go() -> None:
    sheet = XlsxSheet("Initiatives", [Column("Title"), Column("Neighbours", "int")])
    sheet.add([["=HYPERLINK(1)", 3], ["bel\x07", 4]])
    out = io.BytesIO()
    sheet.save(out)
    sheet_read = openpyxl.load_workbook(io.BytesIO(out.getvalue())).active
    assert sheet_read is not None
    cell = sheet_read["A2"]
    assert (cell.value, cell.data_type) == ("=HYPERLINK(1)", "s")
    assert sheet_read["A3"].value == "bel"  # a control character XLSX cannot hold is left out
