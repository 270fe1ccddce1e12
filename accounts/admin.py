"""Admin for people (with their role) and API tokens (shown once, when created)."""

from django import forms
from django.contrib import admin, messages
from django.contrib.auth import get_user_model
from django.contrib.auth.admin import UserAdmin

from accounts.models import ApiToken
from accounts.selectors import user_is_service, user_role
from accounts.services import api_token_create, api_tokens_changed, api_tokens_revoke, operator_sync, user_role_set
from common.admin import AnnouncesChanges
from zakops.models import OperatorRole

User = get_user_model()


class ReviewerChangeForm(UserAdmin.form):
    role = forms.ChoiceField(choices=[("", "— none (service account) —"), *OperatorRole.choices], required=False)


@admin.register(ApiToken)
class ApiTokenAdmin(AnnouncesChanges, admin.ModelAdmin):
    list_display = ["prefix", "name", "user", "created_at", "last_used_at", "revoked_at"]
    list_filter = ["revoked_at"]
    search_fields = ["name", "user__username", "prefix"]
    fields = ["user", "name", "prefix", "created_at", "last_used_at", "revoked_at"]
    readonly_fields = ["prefix", "created_at", "last_used_at"]
    actions = ["revoke"]

    def announce_change(self):
        api_tokens_changed()

    def save_model(self, request, obj, form, change):
        if change:
            return super().save_model(request, obj, form, change)
        token, raw = api_token_create(user=obj.user, name=obj.name)
        obj.pk = token.pk
        messages.warning(request, f"Copy this token now, it is not shown again: {raw}")

    @admin.action(description="Revoke selected tokens")
    def revoke(self, request, queryset):
        messages.success(request, f"Revoked {api_tokens_revoke(tokens=queryset)} token(s).")


admin.site.unregister(User)


@admin.register(User)
class ReviewerAdmin(AnnouncesChanges, UserAdmin):
    """Users with their HITL role; saving keeps zakops.operators in step."""

    form = ReviewerChangeForm
    list_display = ["username", "email", "role", "is_active", "last_login"]
    fieldsets = ((None, {"fields": ("username", "password", "role")}),) + UserAdmin.fieldsets[1:]

    @admin.display(description="role")
    def role(self, obj):
        return "service" if user_is_service(obj) else user_role(obj) or "—"

    def get_form(self, request, obj=None, **kwargs):
        form = super().get_form(request, obj, **kwargs)
        if obj is not None and "role" in form.base_fields:
            form.base_fields["role"].initial = user_role(obj) or ""
        return form

    def announce_change(self):
        api_tokens_changed()  # e.g. deactivated: the person's tokens stop working

    def save_related(self, request, form, formsets, change):
        super().save_related(request, form, formsets, change)
        role = form.cleaned_data.get("role")
        user = form.instance
        if role and not user_is_service(user):
            user_role_set(user=user, role=role)
            if user.email:
                operator_sync(user=user, role=role)
            else:
                messages.warning(request, "Give this person an email: the operators table is keyed by it.")
