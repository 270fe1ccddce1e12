"""The walk that finds, in parsed JSON, what the database could not store."""

import json

import pytest

from common.parsers import json_problem


@pytest.mark.parametrize(
    ("data", "found"),
    [
        ({"a": [1, {"b": "ok"}, "fine"]}, None),
        ([[1, "x\x00"]], ("[0][1]", "NUL characters (\\u0000) can not be stored")),
        ("\ud800", ("", "a lone surrogate (\\ud800) can not be stored")),
        ({"k": {"\x00": 1}}, ("k.\\u0000", "a key with NUL characters (\\u0000) can not be stored")),
        ({"n": -(10**309)}, ("n", "the number is too large for a double (beyond ±1.8e308)")),
        ({"n": 10**308, "f": 1.7e308, "t": True, "z": None, "é": "ünïcode"}, None),
        ({"a": {"b": {"c": {}}}}, ("a", "nested deeper than 3 levels of arrays and objects")),
        ({"a": {"b": {}}}, None),
    ],
)
def test_json_problem_names_the_first_unstorable_value(data, found):
    assert json_problem(data, 3) == found


@pytest.mark.parametrize("text", [
    '{"n": 18446744073709551616, "m": -9223372036854775809, "k": 123456789012345678901234567890}',
    '{"n": 18446744073709551615, "m": -9223372036854775808, "f": 2.2250738585072011e-308, "g": 4.9e-324}',
    '{"f": 0.1, "e": 1E+2, "z": -0.0, "tiny": 1e-400, "s": "a\\u0000b", "u": "\\ud83d\\ude00", "d": 1, "d": 2}',
    '{"id": "1234567890123456789012", "n": [1, 2.5, null, true, {"x": []}]}',
])
def test_the_body_is_read_as_pythons_json_reads_it(rf, text):
    """Integers of any size stay integers, floats round as Python's own parser rounds them."""
    from common.parsers import json_body

    request = rf.post("/api/hitl/assess-risk", text, content_type="application/json")
    try:
        parsed = json_body(request, limit=10_000, encoding="utf-8")
    except Exception as exc:  # a body the database can not store is refused whichever parser read it
        parsed = type(exc).__name__
    expected = json.loads(text)
    if json_problem(expected, 64) is not None:
        expected = "ParseError"
    assert parsed == expected and repr(parsed) == repr(expected)


@pytest.mark.parametrize("text", ['{"n": NaN}', '{"n": Infinity}', '{"s": "\\ud800"}', '{"a": 1,}', "\ufeff{}"])
def test_a_body_json_refuses_is_refused_with_its_message(rf, text):
    from rest_framework.exceptions import ParseError

    from common.parsers import json_body

    request = rf.post("/api/hitl/assess-risk", text.encode(), content_type="application/json")
    with pytest.raises(ParseError) as refused:
        json_body(request, limit=10_000, encoding="utf-8")
    assert "orjson" not in str(refused.value.detail)
