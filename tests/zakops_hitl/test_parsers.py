"""The walk that finds, in parsed JSON, what the database could not store."""

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
