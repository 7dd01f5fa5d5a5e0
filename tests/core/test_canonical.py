"""The fast canonical-JSON path must equal RFC 8785 (the rfc8785 package) byte for byte."""

from __future__ import annotations

import pytest
import rfc8785
from hypothesis import given
from hypothesis import strategies as st

from clearance.core.canonical import canonical_json
from clearance.errors import InputError

text = st.text(st.characters(blacklist_categories=["Cs"]))
scalars = st.none() | st.booleans() | st.integers(-(2**53) + 1, 2**53 - 1) | text
json_values = st.recursive(
    scalars | st.floats(allow_nan=False, allow_infinity=False),
    lambda children: st.lists(children, max_size=4) | st.dictionaries(text, children, max_size=4),
    max_leaves=20,
)


class TestCanonicalJson:
    @given(json_values)
    def test_equals_rfc8785(self, value: object) -> None:
        assert canonical_json(value) == rfc8785.dumps(value)

    def test_known_vector(self) -> None:
        value = {"b": [1, "é", None, True], "a": {"\u20ac": 1.5, "c": "\n\u0001"}}
        assert (
            canonical_json(value)
            == b'{"a":{"c":"\\n\\u0001","\xe2\x82\xac":1.5},"b":[1,"\xc3\xa9",null,true]}'
        )

    def test_values_json_cannot_hold_are_refused(self) -> None:
        with pytest.raises(InputError, match="cannot be written as canonical JSON"):
            canonical_json({"x": float("nan")})
        with pytest.raises(InputError, match="cannot be written as canonical JSON"):
            canonical_json({"x": object()})
