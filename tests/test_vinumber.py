"""Number reading as a Hanoi listener expects to hear it (Northern standard), plus English."""

from __future__ import annotations

import unicodedata

import pytest
from hypothesis import given, settings
from hypothesis import strategies as st

from luot.vinumber import MAX_NUMBER, VOCABULARY_VI, read_number, read_number_en, read_ticket

NORTHERN = [
    (0, "không"),
    (1, "một"),
    (4, "bốn"),
    (5, "năm"),
    (9, "chín"),
    (10, "mười"),
    (11, "mười một"),
    (14, "mười bốn"),
    (15, "mười lăm"),
    (19, "mười chín"),
    (20, "hai mươi"),
    (21, "hai mươi mốt"),
    (24, "hai mươi tư"),
    (25, "hai mươi lăm"),
    (31, "ba mươi mốt"),
    (44, "bốn mươi tư"),
    (55, "năm mươi lăm"),
    (70, "bảy mươi"),
    (99, "chín mươi chín"),
    (100, "một trăm"),
    (101, "một trăm linh một"),
    (104, "một trăm linh bốn"),
    (105, "một trăm linh năm"),
    (110, "một trăm mười"),
    (111, "một trăm mười một"),
    (115, "một trăm mười lăm"),
    (121, "một trăm hai mươi mốt"),
    (205, "hai trăm linh năm"),
    (999, "chín trăm chín mươi chín"),
    (1000, "một nghìn"),
    (1001, "một nghìn không trăm linh một"),
    (1005, "một nghìn không trăm linh năm"),
    (1010, "một nghìn không trăm mười"),
    (1015, "một nghìn không trăm mười lăm"),
    (1023, "một nghìn không trăm hai mươi ba"),
    (1100, "một nghìn một trăm"),
    (1234, "một nghìn hai trăm ba mươi tư"),
    (2014, "hai nghìn không trăm mười bốn"),
    (2025, "hai nghìn không trăm hai mươi lăm"),
    (10_000, "mười nghìn"),
    (15_000, "mười lăm nghìn"),
    (21_000, "hai mươi mốt nghìn"),
    (100_000, "một trăm nghìn"),
    (105_000, "một trăm linh năm nghìn"),
    (1_000_000, "một triệu"),
    (1_000_001, "một triệu không trăm linh một"),
    (1_001_000, "một triệu không trăm linh một nghìn"),
    (1_000_100, "một triệu một trăm"),
    (2_500_000, "hai triệu năm trăm nghìn"),
    (25_000_024, "hai mươi lăm triệu không trăm hai mươi tư"),
    (999_999_999, "chín trăm chín mươi chín triệu chín trăm chín mươi chín nghìn chín trăm chín mươi chín"),
]


@pytest.mark.parametrize(("number", "words"), NORTHERN)
def test_northern_reading(number: int, words: str) -> None:
    assert read_number(number) == words


@pytest.mark.parametrize(("number", "words"), NORTHERN)
def test_ticket_reading_is_the_number_reading(number: int, words: str) -> None:
    assert read_ticket(number) == words


@pytest.mark.parametrize(
    ("number", "words"),
    [
        (0, "zero"),
        (3, "three"),
        (15, "fifteen"),
        (21, "twenty-one"),
        (105, "one hundred five"),
        (1000, "one thousand"),
        (1023, "one thousand twenty-three"),
        (2014, "two thousand fourteen"),
        (1_000_001, "one million one"),
        (999_999_999, "nine hundred ninety-nine million nine hundred ninety-nine thousand nine hundred ninety-nine"),
    ],
)
def test_english_reading(number: int, words: str) -> None:
    assert read_number_en(number) == words


@pytest.mark.parametrize("bad", [-1, MAX_NUMBER + 1, 10**12])
def test_out_of_range_is_refused(bad: int) -> None:
    with pytest.raises(ValueError, match="outside"):
        read_number(bad)
    with pytest.raises(ValueError, match="outside"):
        read_number_en(bad)


@pytest.mark.parametrize("bad", ["12", 1.0, None, True])
def test_non_integers_are_refused(bad: object) -> None:
    with pytest.raises(TypeError):
        read_number(bad)  # type: ignore[arg-type]


@given(st.integers(min_value=0, max_value=MAX_NUMBER))
@settings(max_examples=400, deadline=None)
def test_only_northern_vocabulary(number: int) -> None:
    words = read_number(number)
    assert unicodedata.is_normalized("NFC", words)
    assert "ngàn" not in words and "lẻ" not in words
    assert set(words.split(" ")) <= VOCABULARY_VI
    assert words == words.strip() and "  " not in words


@given(st.integers(min_value=0, max_value=MAX_NUMBER))
@settings(max_examples=200, deadline=None)
def test_units_after_tens_follow_northern_rules(number: int) -> None:
    words = read_number(number).split()
    for before, word in zip(words, words[1:]):
        if before == "linh":
            assert word in {"một", "hai", "ba", "bốn", "năm", "sáu", "bảy", "tám", "chín"}
        if word == "mốt" or word == "tư":
            assert before == "mươi"  # never "mười mốt" / "mười tư"
        if word == "năm" and before in {"mười", "mươi"}:
            raise AssertionError(f"{number}: 5 after tens must be 'lăm': {words}")


def test_reading_is_injective_up_to_99999() -> None:
    readings = {read_number(n) for n in range(100_000)}
    assert len(readings) == 100_000
    english = {read_number_en(n) for n in range(100_000)}
    assert len(english) == 100_000


@given(st.integers(min_value=0, max_value=99_999), st.integers(min_value=0, max_value=99_999))
def test_different_numbers_sound_different(a: int, b: int) -> None:
    assert (read_number(a) == read_number(b)) == (a == b)
