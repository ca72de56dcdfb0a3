"""Reading natural answers: amounts, head counts, a suggested title, a guessed theme, a wijk by name,
a postcode with slips, navigation words and yes or no. Each table lists what residents type and what the
bot reads."""

from __future__ import annotations

import pytest
from hypothesis import given
from hypothesis import strategies as st

from bot.settings import BUNDLED_CONFIG_DIR, load_municipality
from flows.municipality import GeoPoint, Theme, Wijk, wijk_for_postcode
from flows.pii import personal_data_in
from flows.understanding import (
    Amount,
    guess_themes,
    intent_of,
    match_wijk,
    neighbours_in,
    normalise_postcode,
    read_amount,
    read_count,
    suggest_title,
    yes_or_no,
)
from flows.validators import validate_title

ZUTPHEN = load_municipality(BUNDLED_CONFIG_DIR / "zutphen.toml")
DEVENTER = load_municipality(BUNDLED_CONFIG_DIR / "deventer.toml")


def euros(low: float, high: float | None = None, *, about: bool = False) -> Amount:
    return Amount(round(low * 100), None if high is None else round(high * 100), about)


# --- amounts ------------------------------------------------------------------------------------------


@pytest.mark.parametrize(
    ("text", "expected"),
    [
        ("800", euros(800)),
        ("ongeveer 800 euro", euros(800, about=True)),
        ("€ 800,-", euros(800)),
        ("€800", euros(800)),
        ("800 euro", euros(800)),
        ("800 EUR", euros(800)),
        ("zo'n 800", euros(800, about=True)),
        ("zo’n 800 euro", euros(800, about=True)),  # curly apostrophe from a phone keyboard
        ("rond de 800", euros(800, about=True)),
        ("+/- 800", euros(800, about=True)),
        ("~800", euros(800, about=True)),
        ("800 à 1000", euros(800, 1000)),
        ("800 a 1000 euro", euros(800, 1000)),
        ("800 - 1000 euro", euros(800, 1000)),
        ("800-1000", euros(800, 1000)),
        ("800 – 1000", euros(800, 1000)),  # en dash
        ("tussen 800 en 1000", euros(800, 1000)),
        ("tussen de 800 en 1000 euro", euros(800, 1000)),
        ("tussen de 800 en de 1000", euros(800, 1000)),
        ("zo'n 1000 á 1500 euro", euros(1000, 1500, about=True)),
        ("800 tot 1000", euros(800, 1000)),
        ("€800 tot €1000", euros(800, 1000)),
        ("1000 tot 800", euros(800, 1000)),  # a range comes back low to high
        ("2 à 3 duizend", euros(2000, 3000)),
        ("een paar honderd euro", euros(200, 500, about=True)),
        ("paar honderd", euros(200, 500, about=True)),
        ("een paar duizend", euros(2000, 5000, about=True)),
        ("honderd", euros(100)),
        ("duizend euro", euros(1000)),
        ("anderhalf duizend", euros(1500)),
        ("anderhalve duizend euro", euros(1500)),
        ("1,5k", euros(1500)),
        ("2k", euros(2000)),
        ("2K euro", euros(2000)),
        ("twee duizend", euros(2000)),
        ("tweeduizend", euros(2000)),
        ("vijfhonderd", euros(500)),
        ("vijfhonderd euro", euros(500)),
        ("tweehonderdvijftig", euros(250)),
        ("twee honderd vijftig euro", euros(250)),
        ("vijfentwintig euro", euros(25)),
        ("tweeëntwintig euro", euros(22)),
        ("duizend vijfhonderd", euros(1500)),
        ("1.250", euros(1250)),  # Dutch thousands
        ("€ 1.250", euros(1250)),
        ("1.250,50", euros(1250.50)),
        ("1250,50", euros(1250.50)),
        ("€ 12,5", euros(12.50)),
        ("1.000.000", euros(1_000_000)),
        ("1 250 euro", euros(1250)),  # thousands grouped with a space
        ("€ 12 500,50", euros(12_500.50)),
        ("ik denk ongeveer 800 euro", euros(800, about=True)),
        ("Voor 30 bollen en een bankje: 800 euro", euros(800)),  # the number with "euro" is the amount
        ("ten minste 800 euro", euros(800)),  # "ten" is Dutch here, not English ten
        ("800 euro ofzo", euros(800, about=True)),
    ],
)
def test_dutch_amounts_are_read(text: str, expected: Amount) -> None:
    assert read_amount(text) == expected


@pytest.mark.parametrize(
    ("text", "expected"),
    [
        ("€1,250", euros(1250)),
        ("1,250 euros", euros(1250)),
        ("€1,250.50", euros(1250.50)),
        ("about 800", euros(800, about=True)),
        ("around 800 euros", euros(800, about=True)),
        ("roughly €800", euros(800, about=True)),
        ("800 to 1000", euros(800, 1000)),
        ("between 800 and 1000", euros(800, 1000)),
        ("a few hundred", euros(200, 500, about=True)),
        ("a few hundred euros", euros(200, 500, about=True)),
        ("two hundred and fifty", euros(250)),
        ("a thousand euros", euros(1000)),
        ("ten thousand", euros(10_000)),
        ("1.5k", euros(1500)),
        ("12.50", euros(12.50)),
    ],
)
def test_english_amounts_are_read(text: str, expected: Amount) -> None:
    assert read_amount(text, language="en") == expected


@pytest.mark.parametrize(
    "text",
    [
        "",
        "geen idee",
        "weet ik niet",
        "een paar",  # a few of what?
        "0",
        "0 euro",
        "€ 0,00",
        "-800",
        "€ -800",
        "- 800 euro",
        "800 of 500 en ook 300",  # several amounts, none marked as euros: ask again
        "ik heb 5 buren en 20 planten",
        "1,2,3",  # no way to read this as one number
        "1.2345",
    ],
)
def test_no_amount_is_read_when_there_is_none_or_it_is_not_clear(text: str) -> None:
    assert read_amount(text) is None
    assert read_amount(text, language="en") is None


def test_the_same_digits_mean_the_same_amount_in_both_languages() -> None:
    # Three digits after a separator group thousands; one or two are cents, whichever language.
    for text in ("1.250", "1,250", "€ 1.250,50", "€1,250.50", "12,50", "12.50"):
        assert read_amount(text, "nl") == read_amount(text, "en"), text


@given(st.integers(min_value=1, max_value=999_999), st.integers(min_value=0, max_value=99))
def test_every_amount_written_the_dutch_way_is_read_back(whole: int, cents: int) -> None:
    grouped = f"{whole:,}".replace(",", ".")
    assert read_amount(f"€ {grouped},{cents:02d}") == Amount(whole * 100 + cents)
    assert read_amount(f"€{whole:,}.{cents:02d}", language="en") == Amount(whole * 100 + cents)


@given(st.text(max_size=80))
def test_reading_an_amount_never_fails_on_any_text(text: str) -> None:
    amount = read_amount(text)
    assert amount is None or (
        amount.low_cents > 0 and (amount.high_cents is None or amount.high_cents > amount.low_cents)
    )


# --- counts of people ----------------------------------------------------------------------------------


@pytest.mark.parametrize(
    ("text", "expected"),
    [
        ("5", 5),
        ("vijf", 5),
        ("Vijf.", 5),
        ("een stuk of tien", 10),
        ("ongeveer 20", 20),
        ("zo'n 20 mensen", 20),
        ("twee of drie", 3),  # plan for the higher one
        ("5 à 6", 6),
        ("met z'n vijven", 5),
        ("met zn vijven", 5),
        ("met ons drieën", 3),
        ("five", 5),
        ("about 20 people", 20),
        ("a dozen", 12),
        ("een dozijn", 12),
        ("twaalf", 12),
        ("vijfentwintig", 25),
        ("1.000", 1000),
        ("één", 1),
        ("ten", 10),
        ("ik en 4 buren", 5),  # the same head count as neighbours_in reads
    ],
)
def test_counts_are_read(text: str, expected: int) -> None:
    assert read_count(text) == expected


@pytest.mark.parametrize(
    "text",
    [
        "",
        "geen idee",
        "een paar",
        "veel",
        "0",
        "-5",
        "2,5",
        "5 buren en 20 kinderen",
        "ten minste",
        "heel veel",
    ],
)
def test_no_count_is_read_when_there_is_none_or_it_is_not_clear(text: str) -> None:
    assert read_count(text) is None


@pytest.mark.parametrize(
    ("text", "expected"),
    [
        ("ik en 4 buren", 5),  # the writer counts too
        ("Ik en mijn 4 buren willen een moestuin", 5),
        ("met 5 buren", 5),
        ("samen met vijf buurtbewoners", 5),
        ("Ik wil samen met vijf buurtbewoners een bankje", 5),
        ("we zijn met 6 mensen", 6),
        ("We zijn met z'n zessen", 6),
        ("met 5 andere buren", 5),
        ("10 buren doen mee", 10),
        ("me and 4 neighbours", 5),
        ("with 5 neighbors", 5),
        ("there are 6 of us", 6),
        ("we are 7 people", 7),
        ("we zijn met 8", 8),
    ],
)
def test_the_number_of_people_taking_part_is_read_from_a_free_answer(text: str, expected: int) -> None:
    assert neighbours_in(text) == expected


@pytest.mark.parametrize(
    "text",
    [
        "met mijn buurvrouw",  # not a count
        "ik plant 30 bollen",  # not people
        "een speeltuin voor 30 kinderen",  # who it is for, not who takes part
        "we hebben 800 euro nodig",
        "met een paar buren",
        "ik en 4 buren, en 3 andere mensen",  # two counts: ask
        "",
        "Ik wil een moestuin",
    ],
)
def test_no_number_of_people_is_read_unless_the_answer_says_so(text: str) -> None:
    assert neighbours_in(text) is None


# --- suggested title -------------------------------------------------------------------------------------


@pytest.mark.parametrize(
    ("idea", "title"),
    [
        (
            "Ik wil graag een moestuin in het park bij de Leesten, zodat kinderen leren hoe groente groeit.",
            "Een moestuin in het park bij de Leesten",
        ),
        ("Wij willen een buurtfeest organiseren op het plein.", "Een buurtfeest organiseren op het plein"),
        ("Mijn idee is om bloembakken te plaatsen in de straat", "Bloembakken te plaatsen in de straat"),
        ("Graag zou ik een speeltuin zien.", "Een speeltuin"),
        ("Ik zou het leuk vinden als er een jeu de boules baan komt", "Een jeu de boules baan"),
        ("Hoi! Ik heb een idee: een repaircafé in het buurthuis", "Een repaircafé in het buurthuis"),
        ("Meer bomen in de Hanzestraat want het is er zo kaal", "Meer bomen in de Hanzestraat"),
        ("een bankje bij de bushalte omdat ouderen daar lang staan", "Een bankje bij de bushalte"),
        ("Een ontmoetingsplek om samen te koken", "Een ontmoetingsplek"),
        ("I would like to build a community garden because kids need it", "Build a community garden"),
        ("We want a bench near the school so that older people can rest", "A bench near the school"),
        ("I'd like a street party, with music", "A street party"),
        ("My idea is to plant trees along the canal.", "Plant trees along the canal"),
    ],
)
def test_a_title_is_drawn_from_the_first_clause_of_the_idea(idea: str, title: str) -> None:
    assert suggest_title(idea) == title


def test_a_long_first_clause_is_cut_at_a_word() -> None:
    idea = (
        "Een moestuin met heel veel verschillende groenten en kruiden en bloemen voor iedereen in de wijk "
        "die zin heeft om mee te doen"
    )
    title = suggest_title(idea)
    assert title == "Een moestuin met heel veel verschillende groenten en kruiden"
    assert len(title) <= 60 and idea.lower().startswith(title.lower())


@pytest.mark.parametrize(
    "idea",
    [
        "",
        "Ik wil",
        "Hallo",
        "ok",
        "!!!",
        "Bel me op 06 12345678 voor een moestuin",  # a title must never carry contact details
        "Mail jan@example.nl over een moestuin",
        "1234",
    ],
)
def test_no_title_is_suggested_when_nothing_sensible_is_left(idea: str) -> None:
    assert suggest_title(idea) is None


@given(st.text(max_size=300))
def test_a_suggested_title_always_passes_the_title_check_and_holds_no_contact_details(idea: str) -> None:
    title = suggest_title(idea)
    if title is not None:
        assert validate_title(title) == title
        assert len(title) <= 60
        assert title[0] == title[0].upper()
        assert title[-1] not in ".,;:!?"
        assert not personal_data_in(title)


# --- theme -----------------------------------------------------------------------------------------------

THEMES = ZUTPHEN.themes


@pytest.mark.parametrize(
    ("text", "first"),
    [
        ("Een moestuin in het park", "groen"),
        ("MOESTUIN", "groen"),  # case does not matter
        ("Een speeltuin met een schommel", "spelen_sport"),  # "speel" beats "tuin": the longer keyword
        ("We willen het parkeren veiliger maken", "verkeer_veiligheid"),  # not "park"
        ("een muurschildering op de muur van de school", "kunst_cultuur"),
        ("een kunstgras voetbalveldje", "spelen_sport"),
        ("zonnepanelen op het dak van de school", "duurzaamheid"),
        ("koffieochtend in het buurthuis", "ontmoeten"),
        ("boodschappen doen voor eenzame ouderen", "zorg"),
        ("A street party with music and a barbecue", "ontmoeten"),
        ("Planting trees and flowers", "groen"),
        ("Bloemen en bijen in de Café-tuin", "groen"),
    ],
)
def test_the_theme_with_most_keyword_hits_comes_first(text: str, first: str) -> None:
    assert guess_themes(text, THEMES)[0] == first


def test_themes_come_ordered_by_hits_and_only_those_with_a_hit() -> None:
    themes = (
        Theme("groen", "Groen", "Greenery", keywords=("tuin", "bomen")),
        Theme("ontmoeten", "Ontmoeten", "Meeting", keywords=("koffie", "feest")),
        Theme("anders", "Anders", "Other"),
    )
    assert guess_themes("Koffie en een feest in de moestuin", themes) == ("ontmoeten", "groen")
    assert guess_themes("Bomen in de tuin en koffie", themes) == ("groen", "ontmoeten")
    assert guess_themes("iets heel anders", themes) == ()
    assert guess_themes("", themes) == ()


def test_a_keyword_matches_without_diacritics_and_as_a_phrase() -> None:
    themes = (
        Theme("cafe", "Café", "Café", keywords=("café",)),
        Theme("spel", "Spel", "Game", keywords=("jeu de boules",)),
    )
    assert guess_themes("een repaircafe", themes) == ("cafe",)
    assert guess_themes("Een Jeu de Boules-baan", themes) == ("spel",)


def test_a_short_keyword_counts_only_as_a_whole_word() -> None:
    themes = (Theme("kunst", "Kunst", "Art", keywords=("art",)),)
    assert guess_themes("We start a party", themes) == ()
    assert guess_themes("Street art", themes) == ("kunst",)


@pytest.mark.parametrize("municipality", [ZUTPHEN, DEVENTER], ids=["zutphen", "deventer"])
def test_every_bundled_theme_but_anders_has_keywords(municipality) -> None:
    for theme in municipality.themes:
        if theme.code == "anders":
            assert theme.keywords == ()
        else:
            assert 8 <= len(theme.keywords) <= 20, theme.code
            assert all(word == word.lower().strip() and word for word in theme.keywords)


# --- wijk ------------------------------------------------------------------------------------------------


@pytest.mark.parametrize(
    ("text", "name"),
    [
        ("De Leesten", "Leesten"),
        ("leesten", "Leesten"),
        ("wijk De Leesten", "Leesten"),
        ("Leestn", "Leesten"),  # a typo
        ("Lesten", "Leesten"),
        ("waterkwartier", "Waterkwartier"),
        ("Waterkwartíer", "Waterkwartier"),  # diacritics
        ("Het Waterkwartier", "Waterkwartier"),
        ("ik woon in Noordveen", "Noordveen"),
        ("De Hoven", "Centrum–De Hoven"),  # one part of a double name
        ("centrum", "Centrum–De Hoven"),
        ("Warnsvld", "Warnsveld"),
        ("zuidwijken", "Zuidwijken"),
    ],
)
def test_a_wijk_is_found_by_its_name_in_zutphen(text: str, name: str) -> None:
    wijk = match_wijk(text, ZUTPHEN.wijken)
    assert wijk is not None and wijk.name == name


@pytest.mark.parametrize(
    ("text", "name"),
    [
        ("Colmschate-Noord", "Colmschate-Noord"),
        ("colmschate noord", "Colmschate-Noord"),
        ("Borgele", "Borgele en Platvoet"),
        ("platvoet", "Borgele en Platvoet"),
        ("Keizerlanden", "Keizerslanden"),
        ("Bathmn", "Bathmen"),
        ("de binnenstad", "Binnenstad"),
        ("Rivierenwijk", "Rivierenwijk en Bergweide"),
    ],
)
def test_a_wijk_is_found_by_its_name_in_deventer(text: str, name: str) -> None:
    wijk = match_wijk(text, DEVENTER.wijken)
    assert wijk is not None and wijk.name == name


@pytest.mark.parametrize(
    ("text", "wijken"),
    [
        ("Colmschate", DEVENTER.wijken),  # three wijken start with it: not clear
        ("noord", ZUTPHEN.wijken),
        ("zuid", ZUTPHEN.wijken),
        ("Zutphen", ZUTPHEN.wijken),
        ("Amsterdam", ZUTPHEN.wijken),
        ("de wijk", ZUTPHEN.wijken),
        ("", ZUTPHEN.wijken),
        ("Leesten", DEVENTER.wijken),  # a Zutphen wijk is not one of Deventer's
        ("Leesten", ()),
    ],
)
def test_no_wijk_unless_one_clearly_fits(text: str, wijken: tuple[Wijk, ...]) -> None:
    assert match_wijk(text, wijken) is None


def test_two_wijken_with_close_names_are_not_confused() -> None:
    centre = GeoPoint(52.1, 6.2)
    wijken = (Wijk("WK030101", "Oosterhof", centre), Wijk("WK030102", "Oosterhout", centre))
    assert match_wijk("Oosterhof", wijken) == wijken[0]
    assert match_wijk("Oosterhot", wijken) is None  # as close to both


# --- postcode --------------------------------------------------------------------------------------------


@pytest.mark.parametrize(
    ("text", "expected"),
    [
        ("7201 AB", "7201AB"),
        ("7201ab", "7201AB"),
        ("7201 ab ", "7201AB"),
        ("7201-AB", "7201AB"),
        ("72O1 AB", "7201AB"),  # letter O for a zero
        ("72o1ab", "7201AB"),
        ("7OO1 AB", "7001AB"),
        ("l201 AB", "1201AB"),  # l for a one
        ("I201 AB", "1201AB"),
        ("7201", "7201"),
        ("72O1", "7201"),
        ("٧٢٠١ AB", "7201AB"),  # Arabic-Indic digits
        ("postcode 7201 AB", "7201AB"),
        ("mijn postcode is 7201ab", "7201AB"),
        ("7201 AB.", "7201AB"),
    ],
)
def test_postcodes_are_read_with_slips(text: str, expected: str) -> None:
    assert normalise_postcode(text) == expected


@pytest.mark.parametrize(
    "text",
    [
        "",
        "0201 AB",
        "720 AB",
        "72011 AB",
        "7201 ABC",
        "7201 SS",
        "OOOO",
        "abcd",
        "Zutphen",
        "7201 A",
        "72 01 AB",
    ],
)
def test_what_is_not_a_dutch_postcode_is_not_read(text: str) -> None:
    assert normalise_postcode(text) is None


@pytest.mark.parametrize(
    ("text", "wijk"), [("72O1 AB", "WK030100"), ("7231ab", "WK030105"), ("7232", "WK030105")]
)
def test_a_normalised_postcode_finds_its_wijk(text: str, wijk: str) -> None:
    postcode = normalise_postcode(text)
    assert postcode is not None
    found = wijk_for_postcode(ZUTPHEN, postcode)
    assert found is not None and found.code == wijk


# --- navigation words ------------------------------------------------------------------------------------


@pytest.mark.parametrize(
    ("text", "intent"),
    [
        ("stop", "stop"),
        ("stoppen", "stop"),
        ("Stop!", "stop"),
        ("STOP", "stop"),
        ("ik wil stoppen", "stop"),
        ("Ik wil stoppen.", "stop"),
        ("stop alsjeblieft", "stop"),
        ("/stop", "stop"),
        ("annuleren", "stop"),
        ("cancel", "stop"),
        ("terug", "back"),
        ("Terug!", "back"),
        ("vorige", "back"),
        ("ga terug", "back"),
        ("vorige vraag", "back"),
        ("back", "back"),
        ("go back", "back"),
        ("help", "help"),
        ("Help!", "help"),
        ("hulp", "help"),
        ("?", "help"),
        ("??", "help"),
        ("hulp nodig", "help"),
        ("ik heb hulp nodig", "help"),
        ("ik snap het niet", "help"),
        # Turkish
        ("dur", "stop"),
        ("İptal", "stop"),
        ("geri", "back"),
        ("Geri dön", "back"),
        ("yardım", "help"),
        ("Yardım edin", "help"),
        # Arabic
        ("توقف", "stop"),
        ("إلغاء", "stop"),
        ("رجوع", "back"),
        ("مساعدة", "help"),
        ("؟", "help"),
        # Polish
        ("stop", "stop"),
        ("zatrzymaj", "stop"),
        ("wstecz", "back"),
        ("Wróć", "back"),
        ("pomoc", "help"),
        ("Pomocy!", "help"),
        # Ukrainian
        ("стоп", "stop"),
        ("Вийти", "stop"),
        ("назад", "back"),
        ("допомога", "help"),
        ("Допоможіть", "help"),
    ],
)
def test_a_navigation_word_typed_on_its_own_is_understood(text: str, intent: str) -> None:
    assert intent_of(text) == intent


@pytest.mark.parametrize(
    "text",
    [
        "",
        "Een stopbord bij de school",
        "Stop de hardrijders in onze straat",  # an idea that contains "stop"
        "Ik wil dat de auto's stoppen voor het zebrapad",
        "terugkomen",
        "help de buurt met een moestuin",
        "Ik wil een moestuin",
        "ok",
        "ja",
        "Wat is een wijk?",
    ],
)
def test_other_text_is_no_navigation_word(text: str) -> None:
    assert intent_of(text) is None


# --- yes or no -------------------------------------------------------------------------------------------


@pytest.mark.parametrize(
    "text",
    ["ja", "Ja!", "jazeker", "Ja hoor", "klopt", "Dat klopt", "ok", "OK", "oké", "Okay", "goed", "prima",
     "yes", "Yes please", "sure", "👍", "ja, dank je", "evet", "tak", "так", "نعم"],
)  # fmt: skip
def test_yes_is_understood(text: str) -> None:
    assert yes_or_no(text) is True


@pytest.mark.parametrize(
    "text",
    ["nee", "Nee.", "no", "No thanks", "nope", "liever niet", "Nee, liever niet", "nee hoor",
     "klopt niet", "Nee, niet doen", "👎", "hayır", "nie", "ні", "لا"],
)  # fmt: skip
def test_no_is_understood(text: str) -> None:
    assert yes_or_no(text) is False


@pytest.mark.parametrize(
    "text",
    [
        "",
        "misschien",
        "ja maar eerst wil ik iets anders",
        "nee ja",
        "weet ik niet",
        "Een moestuin",
        "?",
        "stop",
    ],
)
def test_anything_else_is_neither_yes_nor_no(text: str) -> None:
    assert yes_or_no(text) is None
