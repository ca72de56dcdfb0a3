"""Every field from Telegram is cleaned and bounded once, at the edge, the same for every database."""

from __future__ import annotations

import pytest

from bot.inbound import (
    CALLBACK_DATA_MAX_BYTES,
    FIRST_NAME_MAX,
    LANGUAGE_CODE_MAX,
    language_tag,
    storable,
    storable_bytes,
)
from flows.events import Event, EventKind, Location, Photo


@pytest.mark.parametrize(
    ("raw", "expected"),
    [
        ("en", "en"),
        ("NL", "nl"),  # Telegram sends lower case, but nothing checks
        ("pt_BR", "pt-br"),
        ("zh-hans", "zh-hans"),
        ("sr-latn-rs-x1234567", "sr-latn-rs"),  # over 16 characters: shortened by whole subtags
        ("x" * 17, None),  # not a language tag at all
        ("nl\x00", None),
        ("../", None),
        ("", None),
        (None, None),
    ],
)
def test_language_codes_become_a_well_formed_tag_or_none(raw: str | None, expected: str | None) -> None:
    assert language_tag(raw) == expected
    assert expected is None or len(expected) <= LANGUAGE_CODE_MAX


def test_callback_data_is_bounded_in_bytes_without_splitting_a_character() -> None:
    assert storable_bytes("é" * 40, CALLBACK_DATA_MAX_BYTES) == "é" * 32
    assert storable_bytes("a\x00b\ud800c", CALLBACK_DATA_MAX_BYTES) == "abc"


def test_an_event_keeps_no_character_a_database_refuses_and_no_field_over_its_column() -> None:
    event = Event(
        kind=EventKind.PHOTO,
        user_id=1,
        chat_id=1,
        text="a\x00b\udc80" * 1000,
        language_code="EN-gb",
        first_name="\u202eAn\x00na\n" * 100,
        callback_query_id="1\x00",
        photo=Photo("AgAC_x-1", "AQAD", 10, 10, 2**60),
    )
    clean = storable(event)
    assert clean is not None
    assert clean.text == ("ab" * 1000)[:1024]  # a caption's limit
    assert clean.language_code == "en-gb"
    assert clean.first_name is not None and clean.first_name.startswith("Anna Anna")
    assert len(clean.first_name) <= FIRST_NAME_MAX
    assert "\x00" not in clean.first_name and "\u202e" not in clean.first_name
    assert clean.callback_query_id == "1"
    assert clean.photo == Photo("AgAC_x-1", "AQAD", 10, 10, None)


@pytest.mark.parametrize(
    "odd",
    [
        {"photo": Photo("file id with spaces", "u")},
        {"photo": Photo("A" * 300, "u")},
        {"location": Location(float("nan"), 5.0)},
        {"location": Location(91.0, 5.0)},
    ],
)
def test_a_photo_or_location_telegram_cannot_have_sent_is_answered_as_unsupported(
    odd: dict[str, object],
) -> None:
    clean = storable(Event(kind=EventKind.PHOTO, user_id=1, chat_id=1, **odd))  # type: ignore[arg-type]
    assert clean is not None and clean.kind is EventKind.UNSUPPORTED
    assert clean.photo is None and clean.location is None


def test_ids_that_do_not_fit_64_bits_are_ignored() -> None:
    assert storable(Event(kind=EventKind.TEXT, user_id=2**63, chat_id=1, text="hoi")) is None
    assert storable(Event(kind=EventKind.TEXT, user_id=1, chat_id=-(2**63) - 1, text="hoi")) is None
