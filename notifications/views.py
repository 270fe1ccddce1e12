"""The profile page: who you are, and which notifications you want. Thin: it reads and
writes the choices through the notifications' selectors and services."""

from django.contrib import messages
from django.shortcuts import redirect, render
from django.views.decorators.http import require_http_methods

from accounts.selectors import actor_of
from notifications.forms import NotificationPreferencesForm
from notifications.models import Channel, ChannelKind
from notifications.selectors import kinds_for_role, preferences_of
from notifications.services import notification_preferences_set
from zakops.models import Operator


@require_http_methods(["GET", "POST"])
def profile(request):
    actor = actor_of(request.user)
    kinds = kinds_for_role(actor.role)
    operator = Operator.objects.filter(pk=actor.actor_id).first() if actor.actor_id else None
    current = preferences_of(operator.preferences if operator else None)
    form = NotificationPreferencesForm(request.POST or None, kinds=kinds if operator else (), initial=current)
    if request.method == "POST" and operator and form.is_valid():
        notification_preferences_set(operator_id=operator.pk, wanted=form.cleaned_data)
        messages.success(request, "Saved: you will be sent only what is ticked.")
        return redirect("profile")
    context = {
        "actor": actor,
        "operator": operator,
        "form": form,
        "email_on": Channel.objects.filter(kind=ChannelKind.EMAIL, enabled=True).exists(),
    }
    return render(request, "notifications/profile.html", context)
