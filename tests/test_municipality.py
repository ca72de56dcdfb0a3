"""Finding a resident's wijk from a shared location or a postcode, and lookups on a municipality."""

from __future__ import annotations

import math

import pytest
from hypothesis import given
from hypothesis import strategies as st

from bot.i18n import Translator
from bot.settings import BUNDLED_CONFIG_DIR, load_municipality
from flows.municipality import (
    DEFAULT_NORMS,
    GeoPoint,
    Municipality,
    Theme,
    Wijk,
    haversine_km,
    normalise_postcode,
    point_in_polygon,
    postcode_area,
    wijk_for_location,
    wijk_for_postcode,
)
from flows.text import localized

AMSTERDAM = GeoPoint(52.3731, 4.8922)
ZUTPHEN = load_municipality(BUNDLED_CONFIG_DIR / "zutphen.toml")
DEVENTER = load_municipality(BUNDLED_CONFIG_DIR / "deventer.toml")
THEMES = (Theme("groen", "Groen", "Greenery"),)


def town(*wijken: Wijk, max_km: float = 8.0, postcodes: dict[str, str] | None = None) -> Municipality:
    return Municipality(
        code="GM0301",
        name="Testdorp",
        wijken=wijken,
        themes=THEMES,
        postcodes=postcodes or {},
        max_location_distance_km=max_km,
    )


def square(lat: float, lon: float, half: float) -> tuple[GeoPoint, ...]:
    return (
        GeoPoint(lat - half, lon - half),
        GeoPoint(lat - half, lon + half),
        GeoPoint(lat + half, lon + half),
        GeoPoint(lat + half, lon - half),
    )


# --- location -> wijk ---------------------------------------------------------------------------------------


@pytest.mark.parametrize("m", [ZUTPHEN, DEVENTER], ids=["zutphen", "deventer"])
def test_a_location_at_a_wijk_centre_is_in_that_wijk(m: Municipality) -> None:
    for w in m.wijken:
        assert wijk_for_location(m, w.centre.lat, w.centre.lon) == w


@pytest.mark.parametrize("m", [ZUTPHEN, DEVENTER], ids=["zutphen", "deventer"])
def test_a_location_in_amsterdam_is_outside_the_municipality(m: Municipality) -> None:
    assert wijk_for_location(m, AMSTERDAM.lat, AMSTERDAM.lon) is None


def test_zutphen_and_deventer_do_not_claim_each_others_centre() -> None:
    deventer_centre = DEVENTER.wijk("WK015001")
    assert deventer_centre is not None
    assert wijk_for_location(ZUTPHEN, deventer_centre.centre.lat, deventer_centre.centre.lon) is None


def test_warnsveld_village_is_found_in_zutphen() -> None:
    found = wijk_for_location(ZUTPHEN, 52.1335, 6.2370)
    assert found is not None and found.name == "Warnsveld"


def test_a_location_between_two_centres_goes_to_the_nearest() -> None:
    west = Wijk("WK030100", "West", GeoPoint(52.14, 6.18))
    east = Wijk("WK030101", "East", GeoPoint(52.14, 6.22))
    m = town(west, east)
    assert wijk_for_location(m, 52.14, 6.19) == west
    assert wijk_for_location(m, 52.14, 6.21) == east


def test_the_distance_limit_decides_what_is_outside() -> None:
    only = Wijk("WK030100", "Dorp", GeoPoint(52.0, 6.0))
    m = town(only, max_km=5.0)
    km_per_degree_lat = haversine_km(GeoPoint(52.0, 6.0), GeoPoint(53.0, 6.0))
    assert wijk_for_location(m, 52.0 + 4.9 / km_per_degree_lat, 6.0) == only
    assert wijk_for_location(m, 52.0 + 5.1 / km_per_degree_lat, 6.0) is None


def test_a_polygon_wins_over_a_nearer_centre() -> None:
    # The point lies right on B's centre, but inside A's outline.
    a = Wijk("WK030100", "A", GeoPoint(52.10, 6.10), polygon=square(52.13, 6.13, 0.05))
    b = Wijk("WK030101", "B", GeoPoint(52.15, 6.15))
    m = town(a, b)
    assert wijk_for_location(m, 52.15, 6.15) == a


def test_outside_every_polygon_the_nearest_centre_is_used() -> None:
    a = Wijk("WK030100", "A", GeoPoint(52.10, 6.10), polygon=square(52.10, 6.10, 0.01))
    b = Wijk("WK030101", "B", GeoPoint(52.15, 6.15))
    m = town(a, b)
    assert wijk_for_location(m, 52.149, 6.149) == b
    assert wijk_for_location(m, 52.111, 6.100) == a  # just outside A's square, still nearest A


def test_point_in_a_concave_polygon() -> None:
    # A "U" shape: the notch at the top is outside.
    u = (
        GeoPoint(0, 0),
        GeoPoint(0, 3),
        GeoPoint(3, 3),
        GeoPoint(3, 2),
        GeoPoint(1, 2),
        GeoPoint(1, 1),
        GeoPoint(3, 1),
        GeoPoint(3, 0),
    )
    assert point_in_polygon(GeoPoint(0.5, 1.5), u)
    assert point_in_polygon(GeoPoint(2.0, 0.5), u)
    assert not point_in_polygon(GeoPoint(2.0, 1.5), u)
    assert not point_in_polygon(GeoPoint(4.0, 1.5), u)


def test_a_polygon_with_fewer_than_three_points_holds_nothing() -> None:
    assert not point_in_polygon(GeoPoint(1, 1), (GeoPoint(0, 0), GeoPoint(2, 2)))


@pytest.mark.parametrize(
    ("lat", "lon"),
    [(math.nan, 6.2), (52.1, math.nan), (math.inf, 6.2), (52.1, -math.inf), (91.0, 6.2), (52.1, 181.0)],
)
def test_impossible_coordinates_give_no_wijk(lat: float, lon: float) -> None:
    assert wijk_for_location(ZUTPHEN, lat, lon) is None


def test_haversine_matches_a_known_distance() -> None:
    # Zutphen to Deventer is about 13 km as the crow flies.
    assert 12.0 < haversine_km(GeoPoint(52.139, 6.197), GeoPoint(52.252, 6.160)) < 14.0
    assert haversine_km(AMSTERDAM, AMSTERDAM) == 0.0


# --- postcode -> wijk ---------------------------------------------------------------------------------------


@pytest.mark.parametrize("text", ["7231 AB", "7231ab", " 7231  Ab ", "7231", "7232 XZ", "7231\u00a0AB"])
def test_a_warnsveld_postcode_is_in_warnsveld(text: str) -> None:
    found = wijk_for_postcode(ZUTPHEN, text)
    assert found is not None and found.code == "WK030105"


@pytest.mark.parametrize(
    "text", ["1011 AB", "7203 AB", "0231 AB", "723 AB", "72310", "7231 A", "AB 7231", "", "zeven"]
)
def test_unknown_or_malformed_postcodes_give_no_wijk(text: str) -> None:
    assert wijk_for_postcode(ZUTPHEN, text) is None


def test_postcode_helpers() -> None:
    assert postcode_area("7231 ab") == "7231"
    assert postcode_area("7231") == "7231"
    assert postcode_area("7231 a") is None
    assert postcode_area("٧٢٣١ AB") is None  # only ASCII digits
    assert normalise_postcode(" 7231ab ") == "7231 AB"
    assert normalise_postcode("7231") is None


def test_deventer_villages_by_postcode() -> None:
    found = {pc: wijk_for_postcode(DEVENTER, f"{pc} AA") for pc in ("7431", "7433", "7434", "7437")}
    assert {pc: w.name for pc, w in found.items() if w} == {
        "7431": "Diepenveen",
        "7433": "Schalkhaar",
        "7434": "Lettele",
        "7437": "Bathmen",
    }


# --- lookups ------------------------------------------------------------------------------------------------


def test_lookups_by_code() -> None:
    assert ZUTPHEN.wijk("WK030102") is not None and ZUTPHEN.wijk("WK030102").name == "Noordveen"
    assert ZUTPHEN.wijk("WK015001") is None
    groen = ZUTPHEN.theme("groen")
    assert groen is not None and (groen.label_nl, groen.label_en) == ("Groen", "Greenery")
    assert ZUTPHEN.theme("nope") is None
    assert (
        ZUTPHEN.department("vergunningen") is not None and ZUTPHEN.department("vergunningen").norm_days == 40
    )
    assert ZUTPHEN.department("verkeer") is not None and ZUTPHEN.department("verkeer").norm_days is None
    assert ZUTPHEN.norm("bij_gemeente") == 20
    assert ZUTPHEN.norm("gerealiseerd") is None
    assert (ZUTPHEN.number, ZUTPHEN.wijk_code_prefix) == ("0301", "WK0301")


def test_theme_label_follows_the_language() -> None:
    theme = Theme("zorg", "Zorg voor elkaar", "Caring for each other")
    assert theme.label("nl") == theme.label("nl-BE") == theme.label(None) == "Zorg voor elkaar"
    assert theme.label("en") == theme.label("de") == "Caring for each other"


def test_municipality_is_hashable_and_read_only() -> None:
    m = town(Wijk("WK030100", "A", GeoPoint(52.1, 6.1)), postcodes={"7231": "WK030100"})
    assert hash(m) == hash(town(Wijk("WK030100", "A", GeoPoint(52.1, 6.1)), postcodes={"7231": "WK030100"}))
    assert dict(m.norms) == dict(DEFAULT_NORMS)
    with pytest.raises(TypeError):
        m.postcodes["1234"] = "WK030100"  # type: ignore[index]
    with pytest.raises(TypeError):
        m.norms["ingediend"] = 1  # type: ignore[index]


# --- properties ---------------------------------------------------------------------------------------------

# Micro-degree grid inside the Netherlands: distinct points are never at distance 0 from each other.
_lat = st.integers(50_700_000, 53_600_000).map(lambda n: n / 1_000_000)
_lon = st.integers(3_300_000, 7_300_000).map(lambda n: n / 1_000_000)
_centres = st.lists(st.tuples(_lat, _lon), min_size=1, max_size=12, unique=True)


def _town_from(centres: list[tuple[float, float]], max_km: float = 8.0) -> Municipality:
    wijken = tuple(
        Wijk(f"WK0301{i:02d}", f"W{i}", GeoPoint(lat, lon)) for i, (lat, lon) in enumerate(centres)
    )
    return town(*wijken, max_km=max_km)


@given(_centres, st.floats(0.001, 50.0))
def test_a_point_exactly_at_a_centre_is_always_in_that_wijk(
    centres: list[tuple[float, float]], km: float
) -> None:
    m = _town_from(centres, km)
    for w in m.wijken:
        assert wijk_for_location(m, w.centre.lat, w.centre.lon) == w


@given(
    _centres, st.floats(allow_nan=True, allow_infinity=True), st.floats(allow_nan=True, allow_infinity=True)
)
def test_any_float_coordinates_never_raise(
    centres: list[tuple[float, float]], lat: float, lon: float
) -> None:
    m = _town_from(centres)
    found = wijk_for_location(m, lat, lon)
    if not (math.isfinite(lat) and math.isfinite(lon)):
        assert found is None
    assert found is None or found in m.wijken


@given(_centres, _lat, _lon)
def test_the_found_wijk_is_the_nearest_and_within_reach(
    centres: list[tuple[float, float]], lat: float, lon: float
) -> None:
    m = _town_from(centres)
    point = GeoPoint(lat, lon)
    nearest = min(haversine_km(point, w.centre) for w in m.wijken)
    found = wijk_for_location(m, lat, lon)
    if nearest > m.max_location_distance_km:
        assert found is None
    else:
        assert found is not None and haversine_km(point, found.centre) == nearest


@given(_lat, _lon, st.floats(0.001, 0.05), st.floats(-0.99, 0.99), st.floats(-0.99, 0.99))
def test_a_point_inside_a_polygon_is_in_that_wijk_wherever_the_centres_are(
    lat: float, lon: float, half: float, dy: float, dx: float
) -> None:
    outlined = Wijk("WK030100", "Outlined", GeoPoint(lat + 0.5, lon + 0.5), polygon=square(lat, lon, half))
    near = Wijk("WK030101", "Near", GeoPoint(lat, lon))
    m = town(outlined, near)
    assert wijk_for_location(m, lat + dy * half, lon + dx * half) == outlined


@given(st.text(max_size=12))
def test_any_text_as_postcode_never_raises(text: str) -> None:
    found = wijk_for_postcode(ZUTPHEN, text)
    assert found is None or found in ZUTPHEN.wijken
    area = postcode_area(text)
    assert area is None or (len(area) == 4 and area.isascii() and area.isdigit() and area[0] != "0")


# --- theme labels in more languages -------------------------------------------------------------------------


def test_theme_label_in_a_configured_language_else_english() -> None:
    theme = Theme("groen", "Groen", "Greenery", keywords=("tuin",), labels={"tr": "Yeşillik"})
    assert theme.label("tr") == "Yeşillik"
    assert theme.label("pl") == "Greenery"
    assert theme.label("nl") == "Groen"


@pytest.mark.parametrize(
    ("language", "shown"),
    [
        ("nl", "Groen"),
        ("en", "Greenery"),
        ("tr", "Yeşillik"),
        ("uk", "Зелень"),
        ("pl", "Greenery"),
        ("ar", "Greenery"),
    ],
)
def test_a_localized_theme_label_falls_back_to_english(language: str, shown: str) -> None:
    theme = Theme("groen", "Groen", "Greenery", labels={"tr": "Yeşillik", "uk": "Зелень"})
    assert Translator(("nl", "en")).render(theme.localized(), language) == shown


def test_a_localized_label_without_english_falls_back_to_dutch() -> None:
    assert Translator(("nl",)).render(localized(nl="Groen", tr="Yeşillik"), "pl") == "Groen"


def test_a_theme_with_labels_is_still_a_value() -> None:
    a = Theme("groen", "Groen", "Greenery", labels={"tr": "Yeşillik"})
    b = Theme("groen", "Groen", "Greenery", labels={"tr": "Yeşillik"})
    assert a == b and hash(a) == hash(b)
    assert a != Theme("groen", "Groen", "Greenery")


def test_bundled_themes_render_in_every_resident_language() -> None:
    tr = Translator(("nl", "en"))
    zorg = ZUTPHEN.theme("zorg")
    assert zorg is not None
    assert {lang: tr.render(zorg.localized(), lang) for lang in ("nl", "en", "tr", "ar", "pl", "uk")} == {
        "nl": "Zorg voor elkaar",
        "en": "Caring for each other",
        "tr": "Birbirimize destek",
        "ar": "رعاية بعضنا بعضًا",
        "pl": "Troska o siebie nawzajem",
        "uk": "Турбота одне про одного",
    }


@pytest.mark.parametrize("m", [ZUTPHEN, DEVENTER], ids=["zutphen", "deventer"])
def test_a_postcode_of_the_municipality_missing_from_the_table_is_still_its_own(m: Municipality) -> None:
    unlisted = next(
        str(pc) for low, high in m.postcode_areas for pc in range(low, high + 1) if str(pc) not in m.postcodes
    )
    assert m.owns_postcode(unlisted)
    assert wijk_for_postcode(m, unlisted) is None  # the bot must say it does not know the wijk
    assert not m.owns_postcode("1012")  # Amsterdam
