"""Admin for risk rules and settings, with a dry run and a preview of a rule being edited.

Every save, delete and bulk action calls `rulebook_changed()`, so running processes use
the new rules on their next assessment.
"""

import re

from django import forms
from django.contrib import admin, messages
from django.core.exceptions import PermissionDenied
from django.shortcuts import redirect
from django.template.response import TemplateResponse
from django.urls import path, reverse
from django.utils.text import Truncator

from common.admin import AnnouncesChanges
from risk.models import READ_VERBS, RiskRule, RiskSettings, verb_phrase
from risk.patterns import PatternError
from risk.rulebook import rule_compile, rulebook_changed
from risk.selectors import risk_config, rule_preview
from risk.services import risk_assess

PREVIEW_DEFAULT_ACTIONS = 500
PREVIEW_MAX_ACTIONS = 5000


class LinesField(forms.CharField):
    """A list of strings edited as one per line."""

    widget = forms.Textarea(attrs={"rows": 4, "cols": 60, "spellcheck": "false"})

    def prepare_value(self, value):
        if isinstance(value, list):
            return "\n".join(value)
        return value

    def to_python(self, value):
        return [line.strip() for line in (value or "").splitlines() if line.strip()]


class JSONObjectFormField(forms.JSONField):
    widget = forms.Textarea(attrs={"rows": 4, "cols": 60, "spellcheck": "false"})

    def to_python(self, value):
        value = super().to_python(value)
        if value in (None, ""):
            return {}
        if not isinstance(value, dict):
            raise forms.ValidationError('Enter a JSON object, e.g. {"key": "value"}.')
        return value


# A `*` right before or after a letter can match inside a word: `*GET*` matches tarGET.
INSIDE_A_WORD = re.compile(r"[A-Za-z]\*|\*[A-Za-z]")


class RiskRuleForm(forms.ModelForm):
    action_types = LinesField(required=False, help_text=RiskRule._meta.get_field("action_types").help_text + " One per line.")
    action_type_patterns = LinesField(
        required=False, help_text=RiskRule._meta.get_field("action_type_patterns").help_text + " One per line."
    )
    input_patterns = JSONObjectFormField(required=False, help_text=RiskRule._meta.get_field("input_patterns").help_text)
    save_anyway = forms.BooleanField(
        required=False,
        label="Save anyway",
        help_text="Needed only to save a rule that lowers risk (low, or no approval) with a pattern that can "
        "match inside a word.",
    )

    class Meta:
        model = RiskRule
        fields = [
            "name", "description", "risk_level", "requires_approval", "enabled",
            "action_types", "action_type_patterns", "input_patterns", "min_amount",
        ]

    def clean(self):
        cleaned = super().clean()
        if not cleaned.get("save_anyway"):
            warning = self.lowers_risk_inside_words()
            if warning:
                raise forms.ValidationError(warning, code="inside_a_word")
        return cleaned

    def lowers_risk_inside_words(self) -> str | None:
        """A warning for a rule that lowers risk (rated low, or asking no approval) with a
        type pattern that can match inside a word, naming recent actions it would match
        that are not reads; None when the rule is not of that kind."""
        data = self.cleaned_data
        level, approval = data.get("risk_level"), data.get("requires_approval")
        if not (level == "low" or not approval):
            return None
        loose = [pattern for pattern in data.get("action_type_patterns") or () if INSIDE_A_WORD.search(pattern)]
        if not loose:
            return None
        rule = RiskRule(**{name: data.get(name) for name in RiskRuleForm.Meta.fields})
        rule.name = rule.name or "(new rule)"
        config = risk_config()
        try:
            preview = rule_preview(
                rule=rule_compile(rule),
                limit=PREVIEW_DEFAULT_ACTIONS,
                where=lambda action: not verb_phrase(action.action_type, config.write_verbs, config.not_write_words).is_read,
            )
        except PatternError:
            return None  # the field's own validation reports it
        found = (
            f"Of the last {preview.scanned} actions it would match {preview.matched} that are not reads: "
            + ", ".join(f"{action.action_type} ({action.action_id})" for action in preview.examples)
            + ("…" if preview.matched > len(preview.examples) else "")
            + "."
            if preview.matched
            else f"None of the last {preview.scanned} actions that are not reads matches it yet."
        )
        how = ", ".join([level or "?", *([] if approval else ["no approval"])])
        return (
            f"This rule lowers risk ({how}) and {', '.join(loose)} can match inside a word "
            f"(*GET* matches DEAL.UPDATE_TARGET_PRICE), so write actions could pass as reads. {found} "
            f"A read is a type whose verb is one of {', '.join(sorted(READ_VERBS))}, with no write verb and no "
            "joining word anywhere in it. Anchor the pattern to the verb (e.g. *.GET_*), or tick “Save anyway”."
        )


class RiskSettingsForm(forms.ModelForm):
    internal_domains = LinesField(
        required=False, help_text=RiskSettings._meta.get_field("internal_domains").help_text + " One per line."
    )
    write_verbs = LinesField(required=False, help_text=RiskSettings._meta.get_field("write_verbs").help_text + " One per line.")
    not_write_words = LinesField(
        required=False, label="Words that are not writes",
        help_text=RiskSettings._meta.get_field("not_write_words").help_text + " One per line.",
    )

    class Meta:
        model = RiskSettings
        fields = "__all__"


class DryRunForm(forms.Form):
    action_type = forms.CharField(
        max_length=100, initial="COMMUNICATION.SEND_EMAIL", widget=forms.TextInput(attrs={"size": 60})
    )
    inputs = JSONObjectFormField(required=False, initial={"to": "cfo@seller.example", "amount": 25000})
    context = JSONObjectFormField(required=False, initial={"deal_stage": "diligence"})


class RiskRuleListForm(forms.ModelForm):
    """A row of the rule list: its "enabled" box is labelled with the rule's name, as the
    column heading alone does not label a checkbox for a screen reader."""

    def __init__(self, *args, **kwargs):
        super().__init__(*args, **kwargs)
        self.fields["enabled"].widget.attrs["aria-label"] = f"Enabled: {self.instance.name}"


@admin.register(RiskRule)
class RiskRuleAdmin(AnnouncesChanges, admin.ModelAdmin):
    form = RiskRuleForm
    list_display = ["name", "risk_level", "requires_approval", "enabled", "applies_to", "updated_at"]
    list_filter = ["risk_level", "requires_approval", "enabled"]
    list_editable = ["enabled"]
    search_fields = ["name", "description"]
    actions = ["enable", "disable"]
    change_form_template = "admin/risk/riskrule/change_form.html"
    change_list_template = "admin/risk/riskrule/change_list.html"
    fieldsets = [
        (None, {"fields": ["name", "description", "risk_level", "requires_approval", "enabled"]}),
        ("Which actions", {"fields": ["action_types", "action_type_patterns", "input_patterns", "min_amount", "save_anyway"]}),
    ]

    @admin.display(description="applies to")
    def applies_to(self, rule):
        parts = [*rule.action_types, *rule.action_type_patterns]
        summary = ", ".join(parts) if parts else "every action type"
        if rule.input_patterns:
            summary += f"; inputs {', '.join(rule.input_patterns)}"
        if rule.min_amount is not None:
            summary += f"; amount ≥ {rule.min_amount:,.2f}"
        return Truncator(summary).chars(90)

    def get_changelist_form(self, request, **kwargs):
        return super().get_changelist_form(request, form=RiskRuleListForm, **kwargs)

    def announce_change(self):
        rulebook_changed()

    @admin.action(description="Enable selected rules", permissions=["change"])
    def enable(self, request, queryset):
        self.message_user(request, f"Enabled {queryset.update(enabled=True)} rule(s).", messages.SUCCESS)
        rulebook_changed()

    @admin.action(description="Disable selected rules", permissions=["change"])
    def disable(self, request, queryset):
        self.message_user(request, f"Disabled {queryset.update(enabled=False)} rule(s).", messages.SUCCESS)
        rulebook_changed()

    def get_urls(self):
        return [
            path("dry-run/", self.admin_site.admin_view(self.dry_run_view), name="risk_riskrule_dry_run"),
            path("preview/", self.admin_site.admin_view(self.preview_view), name="risk_riskrule_preview"),
            *super().get_urls(),
        ]

    def dry_run_view(self, request):
        """Assess an action as the engine would, with the rules in force, and show why."""
        if not self.has_view_permission(request):
            raise PermissionDenied
        form = DryRunForm(request.POST or None)
        assessment = None
        if request.method == "POST" and form.is_valid():
            assessment = risk_assess(
                action_type=form.cleaned_data["action_type"],
                inputs=form.cleaned_data["inputs"],
                context=form.cleaned_data["context"],
            )
        context = {
            **self.admin_site.each_context(request),
            "opts": self.model._meta,
            "title": "Risk dry run",
            "form": form,
            "assessment": assessment,
        }
        return TemplateResponse(request, "admin/risk/riskrule/dry_run.html", context)

    def preview_view(self, request):
        """Which of the most recent actions the rule as typed (not yet saved) would match."""
        if request.method != "POST" or not self.has_view_permission(request):
            raise PermissionDenied
        instance = None
        if request.POST.get("_rule_id", "").isdigit():
            instance = RiskRule.objects.filter(pk=int(request.POST["_rule_id"])).first()
        form = RiskRuleForm(request.POST, instance=instance)
        try:
            limit = min(max(int(request.POST.get("_preview_limit", PREVIEW_DEFAULT_ACTIONS)), 1), PREVIEW_MAX_ACTIONS)
        except ValueError:
            limit = PREVIEW_DEFAULT_ACTIONS
        context = {"limit": limit, "errors": None, "preview": None}
        form.is_valid()  # fills cleaned_data; a duplicate name does not stop a preview
        pattern_fields = {"action_types", "action_type_patterns", "input_patterns", "min_amount", "risk_level"}
        errors = {name: errs for name, errs in form.errors.items() if name in pattern_fields}
        if errors:
            context["errors"] = errors
        else:
            rule = RiskRule(**{name: form.cleaned_data.get(name) for name in form.Meta.fields})
            rule.name = rule.name or "(new rule)"
            try:
                context["preview"] = rule_preview(rule=rule_compile(rule), limit=limit)
            except PatternError as exc:
                context["errors"] = {"patterns": [str(exc)]}
        return TemplateResponse(request, "admin/risk/riskrule/_preview.html", context)


@admin.register(RiskSettings)
class RiskSettingsAdmin(AnnouncesChanges, admin.ModelAdmin):
    """The one settings row: the list page goes straight to it."""

    form = RiskSettingsForm
    fieldsets = [
        ("When no rule matches", {"fields": ["default_risk_level", "default_requires_approval", "auto_approve_low_risk"]}),
        ("Score bases by rule level", {"fields": ["base_low", "base_medium", "base_high", "base_critical"]}),
        ("Modifiers", {"fields": ["bulk_weight", "bulk_threshold", "financial_weight", "external_weight", "internal_domains"]}),
        ("Level thresholds (score ≥)", {"fields": ["threshold_medium", "threshold_high", "threshold_critical"]}),
        ("Write-verb floor", {"fields": ["write_verb_floor", "write_verbs", "not_write_words"]}),
        ("Approval timeouts", {"fields": ["timeout_critical_hours", "timeout_high_hours", "timeout_other_hours"]}),
    ]

    def has_add_permission(self, request):
        return False

    def has_delete_permission(self, request, obj=None):
        return False

    def changelist_view(self, request, extra_context=None):
        row, _ = RiskSettings.objects.get_or_create(pk=RiskSettings.SINGLETON_ID)
        return redirect(reverse("admin:risk_risksettings_change", args=[row.pk]))

    def announce_change(self):
        rulebook_changed()
