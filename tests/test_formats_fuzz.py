"""Import parsers under generated input: a file either parses or is refused with its bad lines, never a crash.

An importer's crash is a 500 from ``POST /v1/banks/{name}/import`` and a traceback from ``vigie bank import``;
schemathesis sends random strings, which seldom look enough like a CSV or VICS file to reach the parsers'
inner branches, so these strategies are built from each format's own vocabulary.
"""

from __future__ import annotations

import io
import json
from typing import Any

import pytest

from vigie.banks.formats import get_format
from vigie.errors import VigieError

hypothesis = pytest.importorskip("hypothesis")
st = hypothesis.strategies
FUZZ = hypothesis.settings(max_examples=400, deadline=None, derandomize=True, database=None)

HEXES = ["0" * 32, "f" * 40, "a" * 64, "A" * 64, "0" * 63, "g" * 32, ""]
WORDS = [
    "md5", "sha1", "sha256", "pdq", "PDQ", "vpdq", "signal_type", "value", "enabled", "ai_generated",
    "external_id", "category", "note", "source", "features", "verify_hints", "derived", "of", "true", "no",
    "maybe",
]  # fmt: skip
TEXT_TOKENS = st.sampled_from(
    [*HEXES, *WORDS, ",", " ", "  ", "\t", "\n", "\r\n", '"', "#", "*", "\x00", "\ufeff"]
)
TEXT = st.lists(TEXT_TOKENS | st.text(max_size=4), max_size=80).map("".join)

VICS_KEYS = st.sampled_from(
    ["value", "Media", "MD5", "SHA1", "MediaID", "Category", "AlternativeHashes", "HashName", "HashValue",
     "Series", "Tags", "VictimIdentified", "odata.metadata"]
)  # fmt: skip
SCALARS = st.none() | st.booleans() | st.integers() | st.sampled_from([*HEXES, *WORDS]) | st.text(max_size=4)
JSON: Any = st.recursive(
    SCALARS,
    lambda inner: st.lists(inner, max_size=4) | st.dictionaries(VICS_KEYS, inner, max_size=5),
    max_leaves=30,
)


def _parses_or_refuses(fmt: str, text: str) -> None:
    parse, _ = get_format(fmt)
    try:
        entries = parse(io.StringIO(text), "fuzz")
    except VigieError:
        return
    assert all(e.signal_type in ("md5", "sha1", "sha256", "pdq") and e.value for e in entries)


@pytest.mark.parametrize("fmt", ["csv", "te", "hashlist", "vics"])
@FUZZ
@hypothesis.given(text=TEXT)
def test_text_in_the_formats_vocabulary(fmt: str, text: str) -> None:
    _parses_or_refuses(fmt, text)


@FUZZ
@hypothesis.given(doc=JSON)
def test_vics_documents_of_any_shape(doc: Any) -> None:
    _parses_or_refuses("vics", json.dumps(doc))


def test_what_the_fuzzing_found_is_refused_plainly() -> None:
    """A list that is not one, JSON nested past Python's recursion limit, a CSV field over the csv module's
    limit: each was an uncaught exception (a 500 from the import endpoint)."""
    cases = [
        ("vics", '{"value": [{"MD5": "' + "0" * 32 + '", "AlternativeHashes": 5}]}', "is not a list"),
        ("vics", "[" * 100_000, "nested too deeply"),
        ("csv", "signal_type,value\nmd5," + "a" * 200_000 + "\nmd5," + "0" * 32 + "\n", "line 2: unreadable"),
        ("csv", "x" * 200_000 + ",value\n", "unreadable CSV header"),
    ]
    for fmt, text, why in cases:
        with pytest.raises(VigieError, match=why):
            get_format(fmt)[0](io.StringIO(text), "fuzz")
