"""The streaming JSON reader: consuming, skipping, and paths in messages."""

from __future__ import annotations

import io
from pathlib import Path

import pytest

from clearance.errors import EvidenceFormatError
from clearance.evidence.jsonpull import JsonReader, reader_over
from clearance.evidence.source import Source

SOURCE = Source(Path("doc.json"), "doc.json")


def reader(text: str) -> JsonReader:
    return reader_over(io.BytesIO(text.encode()), SOURCE)


class TestJsonReader:
    def test_members_left_alone_are_skipped(self) -> None:
        doc = reader('{"a": {"deep": [1, [2, {"x": 3}]]}, "b": [4], "c": "keep"}')
        kept = {}
        for key in doc.members():
            if key == "c":
                kept[key] = doc.string()
        doc.finish()
        assert kept == {"c": "keep"}

    def test_items_and_kinds(self) -> None:
        doc = reader('[1, "two", null, true, {}, []]')
        kinds = []
        for _ in doc.items():
            kinds.append(doc.kind())
        assert kinds == ["a number", "a string", "null", "a boolean", "an object", "a list"]

    def test_numbers_are_int_or_float(self) -> None:
        doc = reader("[1, 2.5]")
        values = [doc.scalar() for _ in doc.items()]
        assert values == [1, 2.5]
        assert [type(v) for v in values] == [int, float]

    def test_errors_name_the_path(self) -> None:
        doc = reader('{"runs": [{"results": [{"level": "note"}, {"level": []}]}]}')
        with pytest.raises(
            EvidenceFormatError,
            match=r"^doc\.json: runs\[0\]\.results\[1\]\.level: expected a string, found a list$",
        ):
            for _ in doc.members():
                for _ in doc.items():
                    for _ in doc.members():
                        for _ in doc.items():
                            for _ in doc.members():
                                doc.string()

    def test_top_level_list_path(self) -> None:
        doc = reader('[{"a": "x"}, {"a": {}}]')
        with pytest.raises(EvidenceFormatError, match=r"^doc\.json: \[1\]\.a: expected a string"):
            for _ in doc.items():
                for _ in doc.members():
                    doc.string()

    def test_unique_keys(self) -> None:
        doc = reader('{"a": 1, "b": 2, "a": 3}')
        with pytest.raises(EvidenceFormatError, match=r"a: appears twice in the same object"):
            list(doc.members(unique={"a"}))

    def test_repeats_of_other_keys_are_allowed(self) -> None:
        doc = reader('{"a": 1, "b": 2, "b": 3}')
        assert list(doc.members(unique={"a"})) == ["a", "b", "b"]

    def test_control_characters_in_keys_are_escaped(self) -> None:
        doc = reader('{"a\\nb": 1, "a\\nb": 2}')
        with pytest.raises(EvidenceFormatError, match=r"^doc\.json: a\\nb: appears twice"):
            list(doc.members(unique={"a\nb"}))
