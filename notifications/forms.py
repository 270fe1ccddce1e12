"""The profile page's form: which notifications a person wants. Shape only."""

from django import forms

from notifications.models import NotificationKind

LABELS = {
    NotificationKind.REQUESTED: "A request waits for my decision",
    NotificationKind.REMINDER: "A request I may decide is close to expiring and nobody has decided it",
    NotificationKind.QUARANTINED: "A request was quarantined (admins decide it)",
    NotificationKind.EXPIRED: "A request expired with nobody's decision",
}


class NotificationPreferencesForm(forms.Form):
    def __init__(self, *args, kinds, **kwargs):
        super().__init__(*args, **kwargs)
        for kind in kinds:
            self.fields[kind] = forms.BooleanField(required=False, label=LABELS[kind])
