"""Loading municipality configurations and settings: bundled files, located errors, the environment."""

from __future__ import annotations

from datetime import date
from pathlib import Path

import pytest
from hypothesis import given
from hypothesis import strategies as st

from bot.settings import (
    BUNDLED_CONFIG_DIR,
    DEFAULT_DATABASE_URL,
    ConfigError,
    Settings,
    bundled_config_names,
    format_field,
    key_lines,
    load_municipality,
    locate_key,
    resolve_config_path,
)
from flows.municipality import DEFAULT_DEPARTMENTS, DEFAULT_NORMS, STATUS_CODES, STATUSES_WITHOUT_NORM

THEME_CODES = (
    "groen",
    "spelen_sport",
    "ontmoeten",
    "verkeer_veiligheid",
    "zorg",
    "duurzaamheid",
    "kunst_cultuur",
    "anders",
)

BASE = """\
# test config
[municipality]
code = "GM0301"
name = "Zutphen"

[[wijken]]
code = "WK030100"
name = "Centrum"
centre = { lat = 52.1385, lon = 6.1960 }

[[wijken]]
code = "WK030101"
name = "Waterkwartier"
centre = { lat = 52.1470, lon = 6.1965 }

[[wijken]]
code = "WK030105"
name = "Warnsveld"
centre = { lat = 52.1330, lon = 6.2350 }

[[themes]]
code = "groen"
label_nl = "Groen"
label_en = "Greenery"

[[themes]]
code = "anders"
label_nl = "Anders"
label_en = "Something else"

[norms]
ingediend = 2
bij_gemeente = 20

[postcodes]
7231 = "WK030105"

[calendar]
closing_days = [
    2026-12-24,
    "2026-12-31",
]

[location]
max_distance_km = 8

[privacy]
contact = "privacy@zutphen.nl"
retention_months = 24
"""


def write(tmp_path: Path, text: str) -> Path:
    path = tmp_path / "gemeente.toml"
    path.write_text(text, encoding="utf-8")
    return path


def edit(old: str, new: str, text: str = BASE) -> str:
    assert text.count(old) == 1, f"{old!r} must occur once in the base config"
    return text.replace(old, new)


def marked_line(text: str) -> int:
    """The line with the ``# <-`` marker: where the error must be reported."""
    return next(i for i, line in enumerate(text.splitlines(), 1) if "# <-" in line)


def load_error(tmp_path: Path, text: str) -> ConfigError:
    path = write(tmp_path, text)
    with pytest.raises(ConfigError) as info:
        load_municipality(path)
    assert info.value.path == path
    return info.value


# --- bundled configurations ---------------------------------------------------------------------------------


@pytest.mark.parametrize("name", ["zutphen", "deventer"])
def test_bundled_config_loads_with_all_themes_departments_and_default_norms(name: str) -> None:
    m = load_municipality(BUNDLED_CONFIG_DIR / f"{name}.toml")
    assert tuple(th.code for th in m.themes) == THEME_CODES
    assert all(len(th.code) <= 20 for th in m.themes)
    assert [(d.code, d.name, d.norm_days) for d in m.departments] == [
        (d.code, d.name, d.norm_days) for d in DEFAULT_DEPARTMENTS
    ]
    # Every department can be asked by e-mail, and has a manager for overdue questions.
    assert all(d.contacts and d.manager for d in m.departments)
    assert m.departments[0].contacts[0].email == f"verkeer@{name}.example"
    assert m.mail_from == f"initiatieven@{name}.example"
    assert dict(m.norms) == dict(DEFAULT_NORMS)
    assert m.no_sign_of_life_days == 15
    assert m.max_location_distance_km == 8
    assert m.retention_months == 24
    assert m.privacy_contact == f"privacy@{name}.nl"
    assert m.closing_days == ()
    assert m.reference_prefix == "INI"
    assert m.stall_resident_notice is True
    assert m.watchdog_interval_minutes == 5
    assert all(w.code.startswith(m.wijk_code_prefix) for w in m.wijken)
    assert set(m.postcodes.values()) <= {w.code for w in m.wijken}


def test_zutphen_has_its_six_cbs_wijken() -> None:
    m = load_municipality(BUNDLED_CONFIG_DIR / "zutphen.toml")
    assert (m.code, m.name) == ("GM0301", "Zutphen")
    assert [(w.code, w.name) for w in m.wijken] == [
        ("WK030100", "Centrum–De Hoven"),
        ("WK030101", "Waterkwartier"),
        ("WK030102", "Noordveen"),
        ("WK030103", "Zuidwijken"),
        ("WK030104", "Leesten"),
        ("WK030105", "Warnsveld"),
    ]
    assert m.postcodes["7231"] == m.postcodes["7232"] == "WK030105"


def test_deventer_has_its_thirteen_cbs_wijken() -> None:
    m = load_municipality(BUNDLED_CONFIG_DIR / "deventer.toml")
    assert (m.code, m.name) == ("GM0150", "Deventer")
    assert [w.code for w in m.wijken] == [
        f"WK0150{n:02d}" for n in (1, 3, 4, 5, 6, 7, 8, 9, 10, 11, 12, 14, 15)
    ]
    assert m.wijk("WK015015") is not None and m.wijk("WK015015").name == "Bathmen"


def test_bundled_config_names_lists_the_shipped_files() -> None:
    assert {"zutphen", "deventer"} <= set(bundled_config_names())


def test_base_config_used_by_these_tests_is_valid(tmp_path: Path) -> None:
    m = load_municipality(write(tmp_path, BASE))
    assert m.closing_days == (date(2026, 12, 24), date(2026, 12, 31))
    assert m.norms["ingediend"] == 2 and m.norms["in_uitvoering"] == DEFAULT_NORMS["in_uitvoering"]
    assert m.departments == DEFAULT_DEPARTMENTS
    assert m.no_sign_of_life_days == 15


def test_optional_tables_may_be_left_out(tmp_path: Path) -> None:
    text = BASE.split("[norms]")[0] + '[privacy]\ncontact = "a@b.nl"\n'
    m = load_municipality(write(tmp_path, text))
    assert dict(m.norms) == dict(DEFAULT_NORMS)
    assert m.postcodes == {} and m.closing_days == () and m.retention_months == 24
    assert m.stall_resident_notice is True and m.watchdog_interval_minutes == 5


def test_stalls_table_switches_the_resident_notice_off_and_sets_the_interval(tmp_path: Path) -> None:
    text = BASE + "\n[stalls]\nresident_notice = false\nwatchdog_interval_minutes = 15\n"
    m = load_municipality(write(tmp_path, text))
    assert m.stall_resident_notice is False
    assert m.watchdog_interval_minutes == 15


# --- errors: file and syntax --------------------------------------------------------------------------------


def test_missing_file_is_a_config_error(tmp_path: Path) -> None:
    with pytest.raises(ConfigError, match="file not found") as info:
        load_municipality(tmp_path / "nope.toml")
    assert info.value.line is None


def test_file_that_is_not_utf8_is_a_config_error(tmp_path: Path) -> None:
    path = tmp_path / "latin1.toml"
    path.write_bytes('name = "Zaltbommel – café"'.encode("latin-1", errors="replace") + b"\xe9")
    with pytest.raises(ConfigError, match="UTF-8"):
        load_municipality(path)


def test_toml_syntax_error_names_the_line_from_tomllib(tmp_path: Path) -> None:
    text = edit('name = "Waterkwartier"', "name = Waterkwartier  # <-")
    err = load_error(tmp_path, text)
    assert err.line == marked_line(text)
    assert err.field == ""
    assert "TOML syntax error" in err.message and "at line" not in err.message
    assert str(err) == f"{err.path}:{err.line}: {err.message}"


def test_syntax_error_at_end_of_document_points_at_the_last_line(tmp_path: Path) -> None:
    text = BASE + "extra = [1,\n2\n"
    err = load_error(tmp_path, text)
    assert err.line == len(text.splitlines())


# --- errors: keys -------------------------------------------------------------------------------------------


def test_unknown_key_suggests_the_closest_known_one(tmp_path: Path) -> None:
    text = edit('name = "Warnsveld"', 'nmae = "Warnsveld"  # <-')
    err = load_error(tmp_path, text)
    assert (err.line, err.field) == (marked_line(text), "wijken[2].nmae")
    assert "unknown key 'nmae'; did you mean 'name'?" in err.message


def test_unknown_top_level_table_suggests_the_right_name(tmp_path: Path) -> None:
    text = edit("[location]", "[locatie]  # <-")
    err = load_error(tmp_path, text)
    assert (err.line, err.field) == (marked_line(text), "locatie")
    assert "did you mean 'location'?" in err.message


def test_unknown_key_inside_inline_table_is_located(tmp_path: Path) -> None:
    text = edit("centre = { lat = 52.1470, lon = 6.1965 }", "centre = { lat = 52.1470, lng = 6.1965 }  # <-")
    err = load_error(tmp_path, text)
    assert (err.line, err.field) == (marked_line(text), "wijken[1].centre.lng")
    assert "did you mean 'lon'?" in err.message


def test_key_in_the_wrong_table_says_where_it_belongs(tmp_path: Path) -> None:
    text = edit(
        'contact = "privacy@zutphen.nl"', 'contact = "privacy@zutphen.nl"\nno_sign_of_life_days = 10  # <-'
    )
    err = load_error(tmp_path, text)
    assert (err.line, err.field) == (marked_line(text), "privacy.no_sign_of_life_days")
    assert "belongs under [reminders]" in err.message


def test_missing_required_key_points_at_its_table_header(tmp_path: Path) -> None:
    text = edit(
        '[[wijken]]\ncode = "WK030101"\nname = "Waterkwartier"\n', '[[wijken]]  # <-\ncode = "WK030101"\n'
    )
    err = load_error(tmp_path, text)
    assert (err.line, err.field) == (marked_line(text), "wijken[1].name")
    assert err.message == "missing required key 'name'"


def test_missing_table_points_at_line_one(tmp_path: Path) -> None:
    text = BASE.split("[privacy]")[0]
    err = load_error(tmp_path, text)
    assert (err.line, err.field, err.message) == (1, "privacy", "missing table [privacy]")


def test_no_wijken_at_all_is_an_error(tmp_path: Path) -> None:
    text = "\n".join(block for block in BASE.split("\n\n") if not block.startswith("[[wijken]]"))
    text = edit('7231 = "WK030105"\n', "", text)
    err = load_error(tmp_path, text)
    assert err.field == "wijken" and "missing table [[wijken]]" in err.message


# --- errors: types ------------------------------------------------------------------------------------------


@pytest.mark.parametrize(
    ("old", "new", "field", "expected"),
    [
        ('code = "GM0301"', "code = 301  # <-", "municipality.code", "expected a string, got an integer"),
        ('name = "Zutphen"', 'name = "  "  # <-', "municipality.name", "must not be empty"),
        (
            "centre = { lat = 52.1385, lon = 6.1960 }",
            'centre = { lat = "52.1385", lon = 6.1960 }  # <-',
            "wijken[0].centre.lat",
            "expected a number, got a string",
        ),
        ("max_distance_km = 8", "max_distance_km = true  # <-", "location.max_distance_km", "got a boolean"),
        ("max_distance_km = 8", "max_distance_km = 0  # <-", "location.max_distance_km", "more than 0"),
        ("max_distance_km = 8", "max_distance_km = nan  # <-", "location.max_distance_km", "finite"),
        ("retention_months = 24", "retention_months = 1.5  # <-", "privacy.retention_months", "got 1.5"),
        ('contact = "privacy@zutphen.nl"', 'contact = "privacy"  # <-', "privacy.contact", "e-mail"),
        (
            "retention_months = 24",
            'retention_months = 24\n\n[stalls]\nresident_notice = "yes"  # <-',
            "stalls.resident_notice",
            "expected true or false, got 'yes'",
        ),
        (
            "retention_months = 24",
            "retention_months = 24\n\n[stalls]\nwatchdog_interval_minutes = 0  # <-",
            "stalls.watchdog_interval_minutes",
            "must be a positive whole number, got 0",
        ),
        (
            "retention_months = 24",
            "retention_months = 24\n\n[stalls]\nwatchdog_interval_minutes = 2000  # <-",
            "stalls.watchdog_interval_minutes",
            "at most 1440 minutes",
        ),
    ],
)
def test_wrong_type_is_reported_with_field_and_line(
    tmp_path: Path, old: str, new: str, field: str, expected: str
) -> None:
    text = edit(old, new)
    err = load_error(tmp_path, text)
    assert (err.line, err.field) == (marked_line(text), field)
    assert expected in err.message


def test_wijken_written_as_a_single_table_asks_for_double_brackets(tmp_path: Path) -> None:
    text = "\n".join(block for block in BASE.split("\n\n") if not block.startswith("[[wijken]]"))
    text += '\n[wijken]  # <-\ncode = "WK030100"\n'
    err = load_error(tmp_path, text)
    assert (err.line, err.field) == (marked_line(text), "wijken")
    assert err.message == "expected tables written as [[wijken]], got a table"


def test_table_given_as_a_plain_value(tmp_path: Path) -> None:
    text = "norms = 5  # <-\n" + BASE.replace("[norms]", "[reminders]").replace(
        "ingediend = 2\nbij_gemeente = 20\n", ""
    )
    err = load_error(tmp_path, text)
    assert (err.line, err.field) == (marked_line(text), "norms")
    assert err.message == "expected a table, got an integer"


# --- errors: codes ------------------------------------------------------------------------------------------


def test_duplicate_wijk_code_reads_like_a_compiler_error(tmp_path: Path) -> None:
    text = edit('code = "WK030105"', 'code = "WK030101"  # <-')
    path = write(tmp_path, text)
    with pytest.raises(ConfigError) as info:
        load_municipality(path)
    line = marked_line(text)
    assert str(info.value) == f"{path}:{line}: wijken[2].code: duplicate wijk code 'WK030101'"


def test_config_error_shows_the_path_relative_to_the_working_directory(
    tmp_path: Path, monkeypatch: pytest.MonkeyPatch
) -> None:
    (tmp_path / "config").mkdir()
    text = edit('code = "WK030105"', 'code = "WK030101"  # <-')
    (tmp_path / "config" / "zutphen.toml").write_text(text, encoding="utf-8")
    monkeypatch.chdir(tmp_path)
    with pytest.raises(ConfigError) as info:
        load_municipality(tmp_path / "config" / "zutphen.toml")
    assert str(info.value).startswith(f"config/zutphen.toml:{marked_line(text)}: wijken[2].code: ")


@pytest.mark.parametrize(
    ("code", "expected"),
    [
        ("WK03010", "'WK' and 6 digits"),
        ("wk030101", "'WK' and 6 digits"),
        ("BU03010101", "'WK' and 6 digits"),
        ("WK015001", "start with 'WK0301'"),
    ],
)
def test_wijk_code_must_be_a_cbs_code_of_this_municipality(tmp_path: Path, code: str, expected: str) -> None:
    text = edit('code = "WK030101"', f'code = "{code}"  # <-')
    err = load_error(tmp_path, text)
    assert (err.line, err.field) == (marked_line(text), "wijken[1].code")
    assert expected in err.message


def test_municipality_code_must_be_gm_and_four_digits(tmp_path: Path) -> None:
    text = edit('code = "GM0301"', 'code = "0301"  # <-')
    err = load_error(tmp_path, text)
    assert (err.line, err.field) == (marked_line(text), "municipality.code")


def test_duplicate_theme_code(tmp_path: Path) -> None:
    text = edit('code = "anders"', 'code = "groen"  # <-')
    err = load_error(tmp_path, text)
    assert (err.line, err.field) == (marked_line(text), "themes[1].code")
    assert err.message == "duplicate theme code 'groen'"


@pytest.mark.parametrize("code", ["a_very_long_theme_code_x", "Groen", "groen en", "1groen", ""])
def test_theme_code_must_be_short_and_simple(tmp_path: Path, code: str) -> None:
    text = edit('code = "anders"', f'code = "{code}"  # <-')
    err = load_error(tmp_path, text)
    assert (err.line, err.field) == (marked_line(text), "themes[1].code")


def test_departments_replace_the_defaults_and_are_checked(tmp_path: Path) -> None:
    text = BASE + '\n[[departments]]\ncode = "groen"\nname = "Groen"\n'
    text += '\n[[departments]]\ncode = "groen"  # <-\nname = "X"\n'
    err = load_error(tmp_path, text)
    assert (err.line, err.field) == (marked_line(text), "departments[1].code")
    ok = BASE + '\n[[departments]]\ncode = "groen"\nname = "Groen"\nnorm_days = 15\n'
    m = load_municipality(write(tmp_path, ok))
    assert [(d.code, d.norm_days) for d in m.departments] == [("groen", 15)]


def test_department_norm_must_be_positive(tmp_path: Path) -> None:
    text = BASE + '\n[[departments]]\ncode = "groen"\nname = "Groen"\nnorm_days = -3  # <-\n'
    err = load_error(tmp_path, text)
    assert (err.line, err.field) == (marked_line(text), "departments[0].norm_days")


# --- errors: norms ------------------------------------------------------------------------------------------


@pytest.mark.parametrize(
    ("line", "field", "expected"),
    [
        ("bij_gemeente = 0", "norms.bij_gemeente", "positive whole number, got 0"),
        ("bij_gemeente = -5", "norms.bij_gemeente", "positive whole number"),
        ("bij_gemeente = 2.5", "norms.bij_gemeente", "positive whole number, got 2.5"),
        ('bij_gemeente = "20"', "norms.bij_gemeente", "got a string"),
        ("bij_gemeente = true", "norms.bij_gemeente", "got a boolean"),
        (
            "bij_gemeetne = 20",
            "norms.bij_gemeetne",
            "unknown status 'bij_gemeetne'; did you mean 'bij_gemeente'?",
        ),
        ("afgewezen = 10", "norms.afgewezen", "cannot have a norm"),
        ("gerealiseerd = 10", "norms.gerealiseerd", "cannot have a norm"),
        ("gestopt = 10", "norms.gestopt", "cannot have a norm"),
    ],
)
def test_bad_norm_is_reported_on_its_line(tmp_path: Path, line: str, field: str, expected: str) -> None:
    text = edit("bij_gemeente = 20", f"{line}  # <-")
    err = load_error(tmp_path, text)
    assert (err.line, err.field) == (marked_line(text), field)
    assert expected in err.message


def test_norms_can_be_set_for_every_status_that_has_one(tmp_path: Path) -> None:
    lines = "".join(f"{s} = 7\n" for s in STATUS_CODES if s not in STATUSES_WITHOUT_NORM)
    text = edit("ingediend = 2\nbij_gemeente = 20\n", lines)
    m = load_municipality(write(tmp_path, text))
    assert set(m.norms) == set(STATUS_CODES) - STATUSES_WITHOUT_NORM
    assert set(m.norms.values()) == {7}


# --- errors: postcodes --------------------------------------------------------------------------------------


@pytest.mark.parametrize(
    ("line", "field", "expected"),
    [
        ('723 = "WK030105"', "postcodes.723", "4 digits"),
        ('72310 = "WK030105"', "postcodes.72310", "4 digits"),
        ('"0999" = "WK030105"', "postcodes.0999", "4 digits"),
        ('"7231 AB" = "WK030105"', 'postcodes."7231 AB"', "4 digits"),
        ('7231 = "WK030199"', "postcodes.7231", "unknown wijk code 'WK030199'"),
        ("7231 = 5", "postcodes.7231", "expected a string"),
    ],
)
def test_bad_postcode_is_reported_on_its_line(tmp_path: Path, line: str, field: str, expected: str) -> None:
    text = edit('7231 = "WK030105"', f"{line}  # <-")
    err = load_error(tmp_path, text)
    assert (err.line, err.field) == (marked_line(text), field)
    assert expected in err.message


# --- errors: geography --------------------------------------------------------------------------------------


@pytest.mark.parametrize(
    ("old", "new", "field", "expected"),
    [
        (
            "lat = 52.1470",
            "lat = 6.1965",
            "wijken[1].centre.lat",
            "latitude 6.1965 is outside the Netherlands",
        ),
        (
            "lon = 6.1965",
            "lon = 52.1470",
            "wijken[1].centre.lon",
            "longitude 52.147 is outside the Netherlands",
        ),
        ("lat = 52.1470", "lat = 53.7", "wijken[1].centre.lat", "50.7–53.6"),
        ("lon = 6.1965", "lon = 3.2", "wijken[1].centre.lon", "3.3–7.3"),
    ],
)
def test_coordinates_outside_the_netherlands(
    tmp_path: Path, old: str, new: str, field: str, expected: str
) -> None:
    text = edit("centre = { lat = 52.1470, lon = 6.1965 }", "centre = { lat = 52.1470, lon = 6.1965 }  # <-")
    text = edit(old, new, text)
    err = load_error(tmp_path, text)
    assert (err.line, err.field) == (marked_line(text), field)
    assert expected in err.message


def test_centre_as_a_pair_is_accepted(tmp_path: Path) -> None:
    text = edit("centre = { lat = 52.1470, lon = 6.1965 }", "centre = [52.1470, 6.1965]")
    m = load_municipality(write(tmp_path, text))
    assert m.wijken[1].centre.lat == 52.1470


def test_polygon_with_fewer_than_three_points(tmp_path: Path) -> None:
    text = edit('name = "Warnsveld"', 'name = "Warnsveld"\npolygon = [[52.14, 6.22], [52.14, 6.25]]  # <-')
    err = load_error(tmp_path, text)
    assert (err.line, err.field) == (marked_line(text), "wijken[2].polygon")
    assert "at least 3 points, got 2" in err.message


def test_polygon_point_outside_the_netherlands_is_located_in_a_multiline_array(tmp_path: Path) -> None:
    polygon = "polygon = [\n    [52.14, 6.22],\n    [42.14, 6.25],  # <-\n    [52.12, 6.25],\n]"
    text = edit('name = "Warnsveld"', f'name = "Warnsveld"\n{polygon}')
    err = load_error(tmp_path, text)
    assert (err.line, err.field) == (marked_line(text), "wijken[2].polygon[1][0]")


def test_polygon_in_both_notations_loads(tmp_path: Path) -> None:
    polygon = "polygon = [[52.14, 6.22], { lat = 52.14, lon = 6.25 }, [52.12, 6.25]]"
    text = edit('name = "Warnsveld"', f'name = "Warnsveld"\n{polygon}')
    m = load_municipality(write(tmp_path, text))
    assert len(m.wijken[2].polygon) == 3 and m.wijken[2].polygon[1].lon == 6.25


# --- errors: closing days -----------------------------------------------------------------------------------


@pytest.mark.parametrize("bad", ['"2026-13-01"', '"24-12-2026"', "2026-12-24T10:00:00", "20", '"morgen"'])
def test_closing_day_that_is_not_an_iso_date(tmp_path: Path, bad: str) -> None:
    text = edit('    "2026-12-31",', f"    {bad},  # <-")
    err = load_error(tmp_path, text)
    assert (err.line, err.field) == (marked_line(text), "calendar.closing_days[1]")
    assert "ISO date" in err.message


def test_closing_days_must_be_a_list(tmp_path: Path) -> None:
    text = (
        BASE.split("[calendar]")[0]
        + '[calendar]\nclosing_days = "2026-12-24"  # <-\n'
        + ("[location]" + BASE.split("[location]")[1])
    )
    err = load_error(tmp_path, text)
    assert (err.line, err.field) == (marked_line(text), "calendar.closing_days")


# --- the key locator ----------------------------------------------------------------------------------------

LOCATOR_TEXT = """\
top = 1
dotted.key = "x"
[a]
b = 2
"quoted key" = 3
'literal' = 4
c.d = 5
inline = { e = 1, f = { g = 2 } }
[a.sub]
h = 6
[[list]]
name = "zero"
[[list]]
name = "one"
[list.child]
x = 1
[[list.items]]
y = 1
[[list.items]]
y = 2
[[list]]
name = '''
[not_a_table]
fake = 1
'''
other = \"\"\"also "quoted" \\\"\"\" inside
[nope]\"\"\"
arr = [
  1, # [comment]
  "[x]",
  [2, 3],
  { k = 4 },
]
after = "# not a comment" # real comment
"""


@pytest.mark.parametrize(
    ("path", "line"),
    [
        (("top",), 1),
        (("dotted", "key"), 2),
        (("dotted",), 2),
        (("a",), 3),
        (("a", "b"), 4),
        (("a", "quoted key"), 5),
        (("a", "literal"), 6),
        (("a", "c", "d"), 7),
        (("a", "inline", "f", "g"), 8),
        (("a", "sub", "h"), 10),
        (("list", 0, "name"), 12),
        (("list", 1), 13),
        (("list", 1, "name"), 14),
        (("list", 1, "child", "x"), 16),
        (("list", 1, "items", 0, "y"), 18),
        (("list", 1, "items", 1, "y"), 20),
        (("list", 2), 21),
        (("list", 2, "name"), 22),
        (("list", 2, "other"), 26),
        (("list", 2, "arr", 0), 29),
        (("list", 2, "arr", 1), 30),
        (("list", 2, "arr", 2, 1), 31),
        (("list", 2, "arr", 3, "k"), 32),
        (("list", 2, "after"), 34),
    ],
)
def test_locator_finds_the_line_of_a_key(path: tuple[str | int, ...], line: int) -> None:
    assert locate_key(LOCATOR_TEXT, path) == line


def test_locator_is_not_fooled_by_brackets_in_strings_and_comments() -> None:
    lines = key_lines(LOCATOR_TEXT)
    assert ("not_a_table",) not in lines and ("nope",) not in lines
    assert ("list", 2, "fake") not in lines


def test_locator_falls_back_to_the_table_header_then_line_one() -> None:
    assert locate_key(LOCATOR_TEXT, ("list", 1, "missing")) == 13
    assert locate_key(LOCATOR_TEXT, ("a", "sub", "missing")) == 9
    assert locate_key(LOCATOR_TEXT, ("nowhere", "at_all")) == 1
    assert locate_key("", ("x",)) == 1


def test_locator_handles_windows_line_endings_and_spaces_in_headers() -> None:
    text = "a = 1\r\n[ tbl . sub ]\r\nkey = 2\r\n[[ arr ]]\r\nz = 3\r\n"
    assert locate_key(text, ("tbl", "sub", "key")) == 3
    assert locate_key(text, ("arr", 0, "z")) == 5


def test_locator_agrees_with_the_bundled_files() -> None:
    for name in bundled_config_names():
        text = (BUNDLED_CONFIG_DIR / f"{name}.toml").read_text(encoding="utf-8")
        m = load_municipality(BUNDLED_CONFIG_DIR / f"{name}.toml")
        lines = text.splitlines()
        for i, w in enumerate(m.wijken):
            assert lines[locate_key(text, ("wijken", i, "code")) - 1] == f'code = "{w.code}"'
        for i, th in enumerate(m.themes):
            assert lines[locate_key(text, ("themes", i, "label_en")) - 1] == f'label_en = "{th.label_en}"'
        assert lines[locate_key(text, ("norms", "bij_gemeente")) - 1].startswith("bij_gemeente = ")


_names = st.text(alphabet="abcdefghij_", min_size=1, max_size=6)


@given(
    st.lists(st.dictionaries(_names, st.integers(0, 9), min_size=1, max_size=4), min_size=1, max_size=5),
    st.lists(st.sampled_from(["", "# comment [x]", "   "]), min_size=5, max_size=5),
)
def test_locator_finds_every_key_in_generated_arrays_of_tables(
    tables: list[dict[str, int]], fillers: list[str]
) -> None:
    out: list[str] = []
    expected: dict[tuple[str | int, ...], int] = {}
    for i, table in enumerate(tables):
        out.append(fillers[i % len(fillers)])
        out.append("[[items]]")
        for key, value in table.items():
            out.append(f"{key} = {value}")
            expected[("items", i, key)] = len(out)
    text = "\n".join(out) + "\n"
    for path, line in expected.items():
        assert locate_key(text, path) == line


def test_format_field_writes_paths_as_people_do() -> None:
    assert format_field(("wijken", 2, "code")) == "wijken[2].code"
    assert format_field(("wijken", 0, "polygon", 1, 0)) == "wijken[0].polygon[1][0]"
    assert format_field(("postcodes", "7231")) == "postcodes.7231"
    assert format_field(("postcodes", "7231 AB")) == 'postcodes."7231 AB"'


# --- settings from the environment --------------------------------------------------------------------------


def test_settings_defaults_from_an_empty_environment() -> None:
    s = Settings.from_env({})
    assert s.telegram_bot_token is None
    assert s.telegram_api_base_url is None
    assert s.database_url == DEFAULT_DATABASE_URL == "sqlite+aiosqlite:///initiatiefbot.db"
    assert s.config_path == BUNDLED_CONFIG_DIR / "zutphen.toml"
    assert s.log_level == "INFO"
    assert s.municipality.name == "Zutphen"


def test_settings_read_every_variable() -> None:
    s = Settings.from_env(
        {
            "TELEGRAM_BOT_TOKEN": " 123:abc ",
            "TELEGRAM_API_BASE_URL": "http://127.0.0.1:8081/bot",
            "DATABASE_URL": "postgresql+asyncpg://bot@db/bot",
            "INITIATIEFBOT_CONFIG": "deventer",
            "LOG_LEVEL": "debug",
        }
    )
    assert s.telegram_bot_token == "123:abc"
    assert s.telegram_api_base_url == "http://127.0.0.1:8081/bot"
    assert s.database_url == "postgresql+asyncpg://bot@db/bot"
    assert s.config_path == BUNDLED_CONFIG_DIR / "deventer.toml"
    assert s.log_level == "DEBUG" and s.log_level_number == 10
    assert s.municipality.code == "GM0150"


def test_empty_variables_count_as_unset() -> None:
    s = Settings.from_env({"TELEGRAM_BOT_TOKEN": "", "DATABASE_URL": "  ", "INITIATIEFBOT_CONFIG": ""})
    assert s.telegram_bot_token is None
    assert s.database_url == DEFAULT_DATABASE_URL
    assert s.config_path == BUNDLED_CONFIG_DIR / "zutphen.toml"


def test_config_can_be_a_path_to_a_toml_file(tmp_path: Path) -> None:
    path = write(tmp_path, BASE)
    s = Settings.from_env({"INITIATIEFBOT_CONFIG": str(path)})
    assert s.config_path == path
    assert s.municipality.wijk("WK030105") is not None


def test_bundled_names_ignore_case() -> None:
    assert resolve_config_path("Deventer") == BUNDLED_CONFIG_DIR / "deventer.toml"


def test_unknown_bundled_name_lists_the_available_ones() -> None:
    with pytest.raises(ConfigError) as info:
        Settings.from_env({"INITIATIEFBOT_CONFIG": "zutpen"})
    err = info.value
    assert err.field == "INITIATIEFBOT_CONFIG" and err.path is None
    assert "deventer, zutphen" in err.message
    assert "did you mean 'zutphen'?" in err.message
    assert str(err).startswith("INITIATIEFBOT_CONFIG: no bundled config named 'zutpen'")


def test_broken_config_fails_when_the_municipality_is_first_used(tmp_path: Path) -> None:
    path = write(tmp_path, edit('code = "GM0301"', 'code = "GM301"'))
    s = Settings.from_env({"INITIATIEFBOT_CONFIG": str(path)})
    with pytest.raises(ConfigError, match=r"municipality\.code"):
        _ = s.municipality


def test_municipality_is_loaded_once() -> None:
    s = Settings.from_env({})
    assert s.municipality is s.municipality


def test_unknown_log_level_is_a_config_error() -> None:
    with pytest.raises(ConfigError, match="LOG_LEVEL"):
        Settings.from_env({"LOG_LEVEL": "chatty"})


def test_department_contacts_and_the_sender_are_checked(tmp_path: Path) -> None:
    base = (BUNDLED_CONFIG_DIR / "zutphen.toml").read_text(encoding="utf-8")
    for wrong, problem in [
        ('email = "verkeer@zutphen.example"', 'email = "geen adres"'),
        (
            'manager = { name = "Marieke Jansen", email = "manager.verkeer@zutphen.example" }',
            'manager = "Marieke"',
        ),
        (
            'contacts = [{ name = "Team Verkeer", email = "verkeer@zutphen.example" }]',
            'contacts = [{ naam = "X" }]',
        ),
        ('from = "initiatieven@zutphen.example"', 'from = "initiatieven"'),
    ]:
        path = tmp_path / "gemeente.toml"
        path.write_text(base.replace(wrong, problem, 1), encoding="utf-8")
        with pytest.raises(ConfigError):
            load_municipality(path)


# --- themes: keywords and labels in more languages ------------------------------------------------------


def test_theme_keywords_and_labels_in_more_languages_are_read(tmp_path: Path) -> None:
    text = edit(
        'label_en = "Greenery"\n',
        'label_en = "Greenery"\nlabel_tr = "Yeşillik"\nlabel_uk = "Зелень"\n'
        'keywords = ["Tuin", "moestuin", " bomen ", "tuin", "jeu de boules"]\n',
    )
    m = load_municipality(write(tmp_path, text))
    groen, anders = m.themes
    assert groen.keywords == ("tuin", "moestuin", "bomen", "jeu de boules")  # lower case, once each
    assert dict(groen.labels) == {"tr": "Yeşillik", "uk": "Зелень"}
    assert (anders.keywords, dict(anders.labels)) == ((), {})


@pytest.mark.parametrize(
    ("new", "field", "expected"),
    [
        (
            'keywords = "tuin"  # <-',
            "themes[0].keywords",
            'expected an array of words like ["tuin", "bomen"]',
        ),
        ("keywords = [1, 2]  # <-", "themes[0].keywords[0]", "expected a string, got an integer"),
        ('keywords = ["tuin", ""]  # <-', "themes[0].keywords[1]", "must not be empty"),
        ('keywords = ["tuin", ["bomen"]]  # <-', "themes[0].keywords[1]", "expected a string, got an array"),
        ("label_pl = 3  # <-", "themes[0].label_pl", "expected a string, got an integer"),
        ('label_ar = ""  # <-', "themes[0].label_ar", "must not be empty"),
        ('label_de = "Grün"  # <-', "themes[0].label_de", "unknown key 'label_de'"),
    ],
)
def test_a_bad_theme_keyword_or_label_is_refused_on_its_line(
    tmp_path: Path, new: str, field: str, expected: str
) -> None:
    text = edit('label_en = "Greenery"\n', f'label_en = "Greenery"\n{new}\n')
    err = load_error(tmp_path, text)
    assert (err.line, err.field) == (marked_line(text), field)
    assert expected in err.message


@pytest.mark.parametrize("name", ["zutphen", "deventer"])
def test_bundled_themes_have_keywords_and_labels_in_every_language(name: str) -> None:
    m = load_municipality(BUNDLED_CONFIG_DIR / f"{name}.toml")
    for theme in m.themes:
        assert set(theme.labels) == {"tr", "ar", "pl", "uk"}, theme.code
        assert theme.keywords or theme.code == "anders"


# --- postcode areas -------------------------------------------------------------------------------------


def test_postcode_areas_are_read_and_tell_which_postcodes_belong_here(tmp_path: Path) -> None:
    text = edit(
        'name = "Zutphen"\n', 'name = "Zutphen"\npostcode_areas = ["7200-7209", "7231 - 7232", "7240"]\n'
    )
    m = load_municipality(write(tmp_path, text))
    assert m.postcode_areas == ((7200, 7209), (7231, 7232), (7240, 7240))
    assert m.owns_postcode("7206") and m.owns_postcode("7232") and m.owns_postcode("7240")
    assert not m.owns_postcode("7211") and not m.owns_postcode("7241") and not m.owns_postcode("1234")


def test_without_postcode_areas_only_the_postcode_table_belongs_here(tmp_path: Path) -> None:
    m = load_municipality(write(tmp_path, BASE))
    assert m.postcode_areas == ()
    assert m.owns_postcode("7231") and m.owns_postcode("7231 AB")
    assert not m.owns_postcode("7206") and not m.owns_postcode("") and not m.owns_postcode("abcd")


@pytest.mark.parametrize(
    ("new", "field", "expected"),
    [
        ('postcode_areas = "7200-7209"  # <-', "municipality.postcode_areas", "expected an array"),
        ('postcode_areas = ["72OO-7209"]  # <-', "municipality.postcode_areas[0]", "not a postcode area"),
        ('postcode_areas = ["7209-7200"]  # <-', "municipality.postcode_areas[0]", "runs backwards"),
        ("postcode_areas = [7200]  # <-", "municipality.postcode_areas[0]", "expected a string"),
    ],
)
def test_bad_postcode_areas_are_refused_on_their_line(
    tmp_path: Path, new: str, field: str, expected: str
) -> None:
    text = edit('name = "Zutphen"\n', f'name = "Zutphen"\n{new}\n')
    err = load_error(tmp_path, text)
    assert (err.line, err.field) == (marked_line(text), field)
    assert expected in err.message


def test_a_postcode_in_the_table_must_lie_in_the_postcode_areas(tmp_path: Path) -> None:
    text = edit('name = "Zutphen"\n', 'name = "Zutphen"\npostcode_areas = ["7200-7209"]\n')
    text = edit('7231 = "WK030105"', '7231 = "WK030105"  # <-', text)
    err = load_error(tmp_path, text)
    assert (err.line, err.field) == (marked_line(text), "postcodes.7231")
    assert "outside [municipality] postcode_areas" in err.message


@pytest.mark.parametrize(
    ("name", "inside", "outside"), [("zutphen", "7206", "7211"), ("deventer", "7425", "7441")]
)
def test_bundled_postcode_areas_cover_the_table_and_stop_at_the_border(
    name: str, inside: str, outside: str
) -> None:
    m = load_municipality(BUNDLED_CONFIG_DIR / f"{name}.toml")
    assert all(m.owns_postcode(area) for area in m.postcodes)
    assert m.owns_postcode(inside) and not m.owns_postcode(outside)  # 7211 is Eefde, 7441 Nijverdal
