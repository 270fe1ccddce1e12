"""Forms of the reviewer pages: they check shape and type; the rules are the services'."""

import json

from django import forms
from django.conf import settings

from approvals.input_fields import FieldErrors, inputs_from_fields, same_json
from approvals.selectors import CLAIM_FILTERS, SORTS, TABS, QueueFilters
from approvals.services.decisions import DECISIONS, MAX_REASON
from common.parsers import json_problem
from zakops.models import RiskLevel

BULK_MAX_ROWS = 200
INPUTS_MAX = 1024 * 1024
CLAIM_LABELS = dict(zip(CLAIM_FILTERS, ("Nobody reviewing", "I am reviewing"), strict=True))
SORT_LABELS = dict(zip(SORTS, ("Risk, then age", "Deadline first", "Oldest first"), strict=True))


class QueueFilterForm(forms.Form):
    tab = forms.ChoiceField(choices=[(tab, tab) for tab in TABS], required=False)
    risk_level = forms.ChoiceField(choices=[("", "Any level"), *RiskLevel.choices], required=False, label="Risk level")
    action_type = forms.CharField(required=False, max_length=100, label="Action type")
    deal = forms.CharField(required=False, max_length=255, label="Deal")
    q = forms.CharField(required=False, max_length=200, label="Search")
    decidable = forms.BooleanField(required=False, label="I can decide")
    claim = forms.ChoiceField(choices=[("", "Anyone's"), *CLAIM_LABELS.items()], required=False, label="Review")
    sort = forms.ChoiceField(choices=list(SORT_LABELS.items()), required=False, label="Sort")
    page = forms.IntegerField(required=False, min_value=1, max_value=100_000)

    def filters(self, *, can_see_quarantined: bool) -> QueueFilters:
        """The filters asked for; a value that is not valid is left out, not an error page."""
        self.is_valid()
        data = {name: value for name, value in self.cleaned_data.items() if value not in (None, "", False)}
        for name in ("action_type", "deal", "q"):
            if name in data:
                data[name] = data[name].strip()
        if data.get("tab") == "quarantined" and not can_see_quarantined:
            data.pop("tab")
        return QueueFilters(**data)


class DecisionForm(forms.Form):
    decision = forms.ChoiceField(choices=[(name, name) for name in DECISIONS])
    reason = forms.CharField(required=False, max_length=MAX_REASON)
    # The detail page's editor: the JSON box as the reviewer left it, the inputs as the
    # page showed them, and what the fields and the box were filled from (the inputs, or
    # an edit the reviewer went back to change); the fields post as `input-<n>`.
    inputs = forms.CharField(required=False, max_length=INPUTS_MAX, strip=False)
    inputs_shown = forms.CharField(required=False, max_length=INPUTS_MAX, strip=False)
    inputs_base = forms.CharField(required=False, max_length=INPUTS_MAX, strip=False)
    inputs_fields = forms.BooleanField(required=False)  # the fields were on the page
    confirmed = forms.BooleanField(required=False)  # the reviewer saw the edit's diff

    field_errors: dict[str, str]

    def _parsed(self, name: str):
        text = self.cleaned_data.get(name) or ""
        if not text.strip():
            return None
        try:
            value = json.loads(text)
        except (ValueError, RecursionError) as exc:
            where = f" (line {exc.lineno}, column {exc.colno})" if isinstance(exc, json.JSONDecodeError) else ""
            raise forms.ValidationError(f"inputs: not valid JSON{where}.") from None
        if not isinstance(value, dict):
            raise forms.ValidationError("inputs: must be a JSON object ({…}).")
        problem = json_problem(value, settings.HITL_JSON_MAX_DEPTH - 1)
        if problem:
            path, why = problem
            raise forms.ValidationError(f"inputs.{path}: {why}." if path else f"inputs: {why}.")
        return value

    def _edits(self, base: dict | None) -> list[dict]:
        """The edits made to `base`: by the JSON box, by the fields, or both."""
        edits = []
        in_json = self._parsed("inputs")
        if in_json is not None and (base is None or not same_json(in_json, base)):
            edits.append(in_json)
        if base is not None and self.cleaned_data.get("inputs_fields"):
            try:
                in_fields = inputs_from_fields(base, self.data)
            except FieldErrors as exc:
                self.field_errors = exc.errors
                raise forms.ValidationError(f"{exc}.") from None
            if not same_json(in_fields, base):
                edits.append(in_fields)
        if len(edits) == 2 and not same_json(*edits):
            raise forms.ValidationError("inputs: you changed both the fields and the JSON; keep one of the two edits.")
        return edits

    def clean(self):
        """`inputs` is the edit, or None when the reviewer left the inputs as shown."""
        cleaned = super().clean()
        self.field_errors = {}
        if self.errors:
            return cleaned
        shown = self._parsed("inputs_shown")
        base = self._parsed("inputs_base") or shown
        edits = self._edits(base)
        edited = edits[0] if edits else base
        cleaned["inputs"] = None if edited is None or (shown is not None and same_json(edited, shown)) else edited
        if cleaned["inputs"] is not None and cleaned.get("decision") != "approve":
            cleaned["inputs"] = None  # a reject or quarantine leaves the inputs as they are
        return cleaned


class BulkDecisionForm(forms.Form):
    decision = forms.ChoiceField(choices=[("approve", "approve"), ("reject", "reject")])
    reason = forms.CharField(required=False, max_length=MAX_REASON)

    def clean(self):
        cleaned = super().clean()
        ids = [value for value in self.data.getlist("action_ids") if value][:BULK_MAX_ROWS + 1]
        if not ids:
            raise forms.ValidationError("Select at least one row.")
        if len(ids) > BULK_MAX_ROWS:
            raise forms.ValidationError(f"Select at most {BULK_MAX_ROWS} rows.")
        if any(len(value) > 50 or "\x00" in value for value in ids):
            raise forms.ValidationError("An action id has at most 50 characters and no NUL.")
        if cleaned.get("decision") == "reject" and not (cleaned.get("reason") or "").strip():
            raise forms.ValidationError("A reject needs a reason: it is recorded with every row.")
        cleaned["action_ids"] = list(dict.fromkeys(ids))
        return cleaned
