"""What the detail page shows beyond the request itself: its place in the queue it was
opened from, the approve form's edit of the inputs (fields and JSON), and an edit's diff
to confirm before the approval is sent."""

import json
from dataclasses import dataclass

from django.urls import reverse

from approvals import selectors
from approvals.forms import DecisionForm
from approvals.input_fields import input_fields, inputs_changes


def inputs_json(inputs) -> str:
    """Inputs (or any JSON) as the page shows them: indented, keys in order."""
    return json.dumps(inputs, indent=2, ensure_ascii=False, sort_keys=True)


@dataclass
class Editor:
    """The approve form's edit of the inputs: the fields and the JSON box, filled from the
    action's inputs or from an edit the reviewer went back to change (`base`); after a
    refused post, showing what they typed, with what was wrong."""

    shown: str  # the inputs as the page shows them, JSON
    base: dict
    json_text: str
    fields: list
    open: bool = False
    json_open: bool = False  # "Edit as JSON" open: the reviewer's JSON text is not the one shown

    @property
    def base_json(self) -> str:
        return inputs_json(self.base)


def editor_for(action, *, draft: dict | None = None, form: DecisionForm | None = None) -> Editor:
    inputs = action.inputs or {}
    base = draft if draft is not None else inputs
    fields = input_fields(base) if isinstance(base, dict) else []  # not an object: the JSON box alone
    editor = Editor(shown=inputs_json(inputs), base=base, json_text=inputs_json(base), fields=fields, open=draft is not None)
    if form is not None and form.data.get("decision") == "approve" and "inputs" in form.data:
        # A refused edit keeps what the reviewer typed, in the fields and in the box, to fix it.
        editor.json_text = form.data.get("inputs", "")
        editor.json_open = editor.json_text.replace("\r\n", "\n").strip() != editor.base_json.strip()
        if form.data.get("inputs_fields") and fields:
            editor.fields = input_fields(base, form.data, getattr(form, "field_errors", {}))
        editor.open = True
    return editor


@dataclass
class QueueNav:
    """Where the detail page sits in the queue it was opened from: the queue's filters
    (carried in its links), the requests before and after it, the way back."""

    query: str
    back_url: str
    previous_url: str | None = None
    next_url: str | None = None


def queue_nav(*, query: str, back_query: str, near: selectors.Neighbours | None) -> QueueNav:
    """`query` is the queue's filters as its address has them, `back_query` the same with
    the page and the row to select; `near`, the requests before and after."""
    nav = QueueNav(query=query, back_url=reverse("home") + (f"?{back_query}" if back_query else ""))
    suffix = f"?{query}" if query else ""
    if near is not None and near.previous:
        nav.previous_url = reverse("review-detail", args=[near.previous]) + suffix
    if near is not None and near.next:
        nav.next_url = reverse("review-detail", args=[near.next]) + suffix
    return nav


@dataclass
class EditToConfirm:
    """An approval with edited inputs, shown as its diff before it is sent."""

    inputs_json: str
    reason: str
    changes: list  # (key, before as JSON or None, after as JSON or None), by key


def edit_to_confirm(action, edited: dict, reason: str) -> EditToConfirm:
    before = action.inputs if isinstance(action.inputs, dict) else {}
    return EditToConfirm(inputs_json=inputs_json(edited), reason=reason, changes=inputs_changes(before, edited))
