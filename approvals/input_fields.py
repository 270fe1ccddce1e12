"""The action's inputs as form fields, and back: the detail page's edit before approving.

Each top-level key is one field, of a kind its value decides: text, a number, a yes/no
box, a list of strings (one per line), or JSON (nested objects, null, mixed lists, and
strings or lists the other kinds can not give back exactly). Reading the fields back keeps
each value's type: a number stays a number, a boolean a boolean. Shape and type only: the
rules of an edit are the services'."""

import json
import math
import re
from collections.abc import Mapping
from dataclasses import dataclass

TEXT, NUMBER, BOOLEAN, LINES, JSON = "text", "number", "boolean", "lines", "json"
# A JSON number, as a reviewer types it: no "1_000", "0x10", "nan" or "inf".
_NUMBER = re.compile(r"-?(0|[1-9][0-9]*)(\.[0-9]+)?([eE][+-]?[0-9]+)?")
FIELD_PREFIX = "input-"


@dataclass
class InputField:
    """One field of the form: `name` is what it posts as, `key` the input's key."""

    name: str
    key: str
    kind: str
    text: str = ""  # the value as the field shows it (not for BOOLEAN)
    checked: bool = False  # BOOLEAN
    error: str = ""

    @property
    def multiline(self) -> bool:
        return self.kind in (LINES, JSON) or "\n" in self.text or len(self.text) > 80

    @property
    def rows(self) -> int:
        return min(12, max(2, self.text.count("\n") + 2))


def _kind(value) -> str:
    if isinstance(value, bool):
        return BOOLEAN
    if isinstance(value, int | float):
        return NUMBER
    # A browser sends a text box's line ends as CRLF: a string holding a CR goes as JSON.
    if isinstance(value, str):
        return TEXT if "\r" not in value else JSON
    if isinstance(value, list) and all(isinstance(item, str) and item.strip() and not re.search(r"[\r\n]", item) for item in value):
        return LINES
    return JSON


def _shown(value, kind: str) -> str:
    if kind == TEXT:
        return value
    if kind == LINES:
        return "\n".join(value)
    if kind == BOOLEAN:
        return ""
    return json.dumps(value, ensure_ascii=False, indent=2 if kind == JSON else None, sort_keys=True)


def input_fields(base: dict, data: Mapping | None = None, errors: Mapping | None = None) -> list[InputField]:
    """The fields of `base`, in key order; with `data`, showing what the reviewer posted
    (to fix what `errors`, by key, names)."""
    fields = []
    for index, key in enumerate(sorted(base)):
        kind = _kind(base[key])
        field = InputField(name=f"{FIELD_PREFIX}{index}", key=key, kind=kind, error=(errors or {}).get(key, ""))
        if data is None:
            field.text, field.checked = _shown(base[key], kind), base[key] is True
        else:
            field.text, field.checked = data.get(field.name, ""), data.get(field.name) == "on"
        fields.append(field)
    return fields


class FieldErrors(ValueError):
    """What was wrong with the posted fields, by key: "amount: enter a number"."""

    def __init__(self, errors: dict[str, str]):
        super().__init__("; ".join(f"{key}: {why}" for key, why in errors.items()))
        self.errors = errors


def _read(text: str, kind: str, before):
    text = text.replace("\r\n", "\n") if kind in (TEXT, LINES, JSON) else text
    if kind == TEXT:
        return text
    if kind == LINES:
        return [line for line in text.split("\n") if line.strip()]
    if kind == NUMBER:
        text = text.strip()
        if not _NUMBER.fullmatch(text):
            raise ValueError("enter a number")
        if isinstance(before, int) and not re.search(r"[.eE]", text):
            return int(text)
        number = float(text)
        if not math.isfinite(number):
            raise ValueError("enter a number")
        return number
    try:
        return json.loads(text)
    except (ValueError, RecursionError) as exc:
        where = f" (line {exc.lineno}, column {exc.colno})" if isinstance(exc, json.JSONDecodeError) else ""
        raise ValueError(f"not valid JSON{where}") from None


def inputs_from_fields(base: dict, data: Mapping) -> dict:
    """The inputs as the reviewer left the fields of `base`: every key of `base`, each
    read as its kind. A box not posted is an unticked one. Raises FieldErrors."""
    inputs, errors = {}, {}
    for field in input_fields(base):
        if field.kind == BOOLEAN:
            inputs[field.key] = data.get(field.name) == "on"
            continue
        try:
            inputs[field.key] = _read(data.get(field.name, ""), field.kind, base[field.key])
        except ValueError as exc:
            errors[field.key] = str(exc)
    if errors:
        raise FieldErrors(errors)
    return inputs


def same_json(a, b) -> bool:
    """Equal as JSON, types included: 1, 1.0 and true are three values (Python's == holds
    True == 1 == 1.0)."""
    return json.dumps(a, sort_keys=True) == json.dumps(b, sort_keys=True)



def inputs_changes(before: dict, after: dict) -> list[tuple[str, str | None, str | None]]:
    """What an edit changes, key by key in key order, as (key, before, after), each value
    as JSON text and None where the key is not there; types told apart, as `same_json`."""
    def shown(inputs, key):
        return json.dumps(inputs[key], ensure_ascii=False, sort_keys=True) if key in inputs else None

    return [
        (key, shown(before, key), shown(after, key))
        for key in sorted({*before, *after})
        if not (key in before and key in after and same_json(before[key], after[key]))
    ]
