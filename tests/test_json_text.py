"""The fast JSON writer writes exactly what `json.dumps(data, indent=2)` writes (the contract's
bytes, tests/test_golden_json.py), on every shape of data."""

from __future__ import annotations

import json
from typing import Any

from hypothesis import given, settings
from hypothesis import strategies as st

from archcalc.render.json_text import dumps

SCALARS = st.none() | st.booleans() | st.integers() | st.floats() | st.text(max_size=8)
KEYS = st.text(max_size=6) | st.integers() | st.booleans() | st.none()
DATA = st.recursive(
    SCALARS,
    lambda inner: st.lists(inner, max_size=4) | st.tuples(inner, inner) | st.dictionaries(KEYS, inner, max_size=4),
    max_leaves=30,
)


@settings(max_examples=300, deadline=None)
@given(DATA)
def test_same_text_as_the_standard_library(data: Any) -> None:
    assert dumps(data) == json.dumps(data, indent=2)


def test_empty_and_nested_containers() -> None:
    data = {"a": [], "b": {}, "c": [[], {}, [1, [2.5, "é\n"]]], "d": {"e": None}}
    assert dumps(data) == json.dumps(data, indent=2)
