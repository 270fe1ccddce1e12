"""Admin for notification channels (addresses and secrets are write-only: shown masked,
never sent back to the browser) and the delivery record of every notification."""

from django import forms
from django.contrib import admin, messages
from django.utils.text import Truncator

from notifications.models import Channel, ChannelKind, Notification, url_masked
from notifications.services import channel_save, notifications_retry


class ChannelForm(forms.ModelForm):
    # Write-only: an empty field on a change keeps what is stored.
    url = forms.URLField(
        label="Address", required=False, max_length=2000, assume_scheme="https",
        widget=forms.PasswordInput(render_value=False, attrs={"autocomplete": "off"}),
    )
    signing_secret = forms.CharField(
        required=False, max_length=200, widget=forms.PasswordInput(render_value=False, attrs={"autocomplete": "off"}),
    )

    class Meta:
        model = Channel
        fields = [
            "name", "kind", "url", "signing_secret", "enabled",
            "on_requested", "on_quarantined", "on_reminder", "on_expired", "min_risk_level",
        ]

    def __init__(self, *args, **kwargs):
        super().__init__(*args, **kwargs)
        stored = self.instance.pk and self.instance.url
        self.fields["url"].help_text = (
            f"Stored: {url_masked(self.instance.url)} (leave empty to keep it). " if stored else ""
        ) + "Slack: the incoming-webhook URL. Signed or engine webhook: your receiver's URL. Empty for e-mail."
        has_secret = self.instance.pk and self.instance.signing_secret
        self.fields["signing_secret"].help_text = (
            "A secret is stored (leave empty to keep it). " if has_secret else ""
        ) + "Signed and engine webhooks only. Left empty on a new channel, one is generated and shown once."
        self.fields["kind"].help_text = (
            "An engine webhook is sent every decision, expiry and cancellation (hitl.decided), whatever the kinds "
            "and lowest level below, which apply to the other channels."
        )

    def clean_url(self):
        return self.cleaned_data["url"] or (self.instance.url if self.instance.pk else "")

    def clean_signing_secret(self):
        return self.cleaned_data["signing_secret"] or (self.instance.signing_secret if self.instance.pk else "")


@admin.register(Channel)
class ChannelAdmin(admin.ModelAdmin):
    form = ChannelForm
    list_display = ["name", "kind", "destination", "enabled", "kinds", "min_risk_level", "updated_at"]
    list_filter = ["kind", "enabled"]
    search_fields = ["name"]

    @admin.display(description="sends")
    def kinds(self, obj):
        if obj.kind == ChannelKind.ENGINE:
            return "every decision, expiry and cancellation"
        names = [kind for kind in ("requested", "quarantined", "reminder", "expired") if getattr(obj, f"on_{kind}")]
        return ", ".join(names) or "nothing"

    def save_model(self, request, obj, form, change):
        generated = channel_save(channel=obj)
        if generated:
            messages.warning(
                request,
                f"Copy this signing secret into the receiver now, it is not shown again: {generated}",
            )
        if obj.kind == ChannelKind.EMAIL and not obj.enabled:
            messages.info(request, "E-mail is off: reviewers are e-mailed nothing until it is enabled again.")


@admin.register(Notification)
class NotificationAdmin(admin.ModelAdmin):
    """Every notification, and what became of it. Read only; failed ones can be sent again."""

    list_display = ["created_at", "kind", "action", "channel", "recipient", "status", "attempts", "next_attempt_at", "sent_at", "error"]
    list_filter = ["status", "event__kind", "channel"]
    search_fields = ["event__request__action__action_id", "recipient"]
    list_select_related = ["event__request", "channel"]
    date_hierarchy = "created_at"
    actions = ["send_again"]
    fields = [
        "kind", "action", "channel", "recipient", "status", "attempts", "max_attempts",
        "next_attempt_at", "last_attempt_at", "sent_at", "last_error", "created_at",
    ]
    readonly_fields = fields

    @admin.display(description="kind", ordering="event__kind")
    def kind(self, obj):
        return obj.event.kind

    @admin.display(description="action", ordering="event__request__action_id")
    def action(self, obj):
        return obj.event.request.action_id

    @admin.display(description="last error or note")
    def error(self, obj):
        return Truncator(obj.last_error).chars(80)

    def has_add_permission(self, request):
        return False

    def has_change_permission(self, request, obj=None):
        return False

    @admin.action(description="Send the selected failed notifications again", permissions=["view"])
    def send_again(self, request, queryset):
        messages.success(request, f"{notifications_retry(notifications=queryset)} notification(s) will be sent again.")
