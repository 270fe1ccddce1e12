"""The inputs as form fields and back: what a reviewer leaves untouched comes back the
same, types and all; what they change comes back typed; a bad value names its field."""

import re

import pytest
from hypothesis import given, settings
from hypothesis import strategies as st

from approvals.input_fields import (
    BOOLEAN,
    JSON,
    LINES,
    NUMBER,
    TEXT,
    FieldErrors,
    input_fields,
    inputs_changes,
    inputs_from_fields,
    same_json,
)


def posted(fields) -> dict:
    """What a browser posts for the fields as they are: a ticked box "on", an unticked one
    nothing, and a textarea's line ends as CRLF."""
    data = {}
    for field in fields:
        if field.kind == BOOLEAN:
            if field.checked:
                data[field.name] = "on"
        else:
            data[field.name] = field.text.replace("\n", "\r\n") if field.multiline else field.text
    return data


def by_key(fields) -> dict:
    return {field.key: field for field in fields}


def test_each_value_gets_the_field_its_type_calls_for():
    inputs = {
        "subject": "Next steps", "amount": 1250000, "rate": 0.35, "urgent": True, "cc": ["a@x.example", "b@x.example"],
        "terms": {"days": 30}, "note": None, "mixed": [1, "two"], "body": "Line one\nLine two", "blank_lines": ["a", ""],
    }
    fields = by_key(input_fields(inputs))
    assert {key: field.kind for key, field in fields.items()} == {
        "subject": TEXT, "amount": NUMBER, "rate": NUMBER, "urgent": BOOLEAN, "cc": LINES,
        "terms": JSON, "note": JSON, "mixed": JSON, "body": TEXT, "blank_lines": JSON,
    }
    assert fields["amount"].text == "1250000" and fields["rate"].text == "0.35"
    assert fields["cc"].text == "a@x.example\nb@x.example"
    assert fields["urgent"].checked
    assert fields["body"].multiline and not fields["subject"].multiline
    assert fields["terms"].text == '{\n  "days": 30\n}'


def test_changed_fields_come_back_with_their_types():
    base = {"amount": 100, "rate": 1.5, "urgent": True, "cc": ["a@x.example"], "subject": "Hi", "terms": {"days": 30}}
    data = posted(input_fields(base))
    fields = by_key(input_fields(base))
    data.update({
        fields["amount"].name: " 250 ", fields["rate"].name: "2", fields["cc"].name: "a@x.example\r\n\r\nc@x.example\r\n",
        fields["subject"].name: "Hello", fields["terms"].name: '{"days": 45, "net": true}',
    })
    del data[fields["urgent"].name]  # the box unticked
    edited = inputs_from_fields(base, data)
    assert edited == {"amount": 250, "rate": 2.0, "urgent": False, "cc": ["a@x.example", "c@x.example"],
                      "subject": "Hello", "terms": {"days": 45, "net": True}}
    assert isinstance(edited["amount"], int) and isinstance(edited["rate"], float)  # 2 typed for a float stays a float
    assert same_json(edited["urgent"], False)


def test_an_integer_given_a_fraction_becomes_a_fractional_number():
    base = {"amount": 100}
    field = input_fields(base)[0]
    assert inputs_from_fields(base, {field.name: "100.5"}) == {"amount": 100.5}


@pytest.mark.parametrize("typed", ["", "ten", "1_000", "0x10", "nan", "inf", "1e400", "1.", "--1"])
def test_a_number_field_refuses_what_is_not_a_number_and_names_the_field(typed):
    base = {"amount": 100, "subject": "ok"}
    data = posted(input_fields(base))
    data[by_key(input_fields(base))["amount"].name] = typed
    with pytest.raises(FieldErrors) as caught:
        inputs_from_fields(base, data)
    assert caught.value.errors == {"amount": "enter a number"}
    assert str(caught.value) == "amount: enter a number"


def test_a_json_field_says_where_its_json_is_broken():
    base = {"terms": {"days": 30}}
    with pytest.raises(FieldErrors) as caught:
        inputs_from_fields(base, {input_fields(base)[0].name: '{"days": }'})
    assert str(caught.value) == "terms: not valid JSON (line 1, column 10)"


def test_fields_redrawn_from_a_post_show_what_was_typed_and_the_error():
    base = {"amount": 100, "urgent": False}
    names = {field.key: field.name for field in input_fields(base)}
    fields = by_key(input_fields(base, {names["amount"]: "ten", names["urgent"]: "on"}, {"amount": "enter a number"}))
    assert (fields["amount"].text, fields["amount"].error) == ("ten", "enter a number")
    assert fields["urgent"].checked and fields["urgent"].error == ""


def test_same_json_tells_types_apart():
    assert same_json({"a": 1}, {"a": 1})
    assert not same_json({"a": 1}, {"a": 1.0})
    assert not same_json({"a": True}, {"a": 1})


def test_the_changes_of_an_edit_key_by_key_types_told_apart():
    before = {"amount": 1, "buyer": "Acme", "terms": {"days": 30}, "same": [1]}
    after = {"amount": 1.0, "buyer": "Acme", "note": "x", "same": [1]}
    assert inputs_changes(before, after) == [
        ("amount", "1", "1.0"), ("note", None, '"x"'), ("terms", '{"days": 30}', None),
    ]


# Any JSON object as the engine may send it: the fields a browser posts back untouched
# read as the same object, each value of the same type.
_scalars = st.none() | st.booleans() | st.integers() | st.floats(allow_nan=False, allow_infinity=False) | st.text()
_json = st.recursive(_scalars, lambda inner: st.lists(inner, max_size=4) | st.dictionaries(st.text(max_size=8), inner, max_size=4), max_leaves=12)


@settings(max_examples=300, derandomize=True, deadline=None)
@given(st.dictionaries(st.text(max_size=12), _json | st.lists(st.text(), max_size=4), max_size=8))
def test_untouched_fields_give_back_the_same_inputs(inputs):
    back = inputs_from_fields(inputs, posted(input_fields(inputs)))
    assert same_json(back, inputs)


# A value of each kind, and another of the same kind typed over it: the fields give back
# the new values, each of its kind (an integer an integer, a fraction a float, ...).
_of_kind = {
    "text": st.text().filter(lambda text: "\r" not in text),
    "integer": st.integers(),
    "fraction": st.floats(allow_nan=False, allow_infinity=False),
    "boolean": st.booleans(),
    "lines": st.lists(st.text(min_size=1).filter(lambda text: text.strip() and not re.search(r"[\r\n]", text)), max_size=4),
    "json": st.dictionaries(st.text(max_size=5), _json, max_size=3),
}


@st.composite
def _edits(draw):
    before, after = {}, {}
    for key in draw(st.lists(st.text(max_size=8), unique=True, max_size=6)):
        kind = draw(st.sampled_from(sorted(_of_kind)))
        before[key], after[key] = draw(_of_kind[kind]), draw(_of_kind[kind])
    return before, after


@settings(max_examples=300, derandomize=True, deadline=None)
@given(_edits())
def test_values_typed_over_the_fields_come_back_with_their_types(edit):
    before, after = edit
    typed = posted(input_fields(after))  # what the reviewer types: the new values, shown as fields show them
    assert same_json(inputs_from_fields(before, typed), after)
