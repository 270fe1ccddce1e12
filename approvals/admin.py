"""Approval requests in admin: to look up and audit, not to edit. Decisions go through the
API or the reviewer pages, so that every one writes its audit and outbox rows."""

from django.contrib import admin

from approvals.models import ApprovalRequest


@admin.register(ApprovalRequest)
class ApprovalRequestAdmin(admin.ModelAdmin):
    list_display = ["action_id", "round", "state", "risk_level", "score", "requested_by", "decided_by_name", "decided_at", "expires_at"]
    list_filter = ["state", "risk_level"]
    search_fields = ["action__action_id", "requested_by", "decided_by_name"]
    date_hierarchy = "created_at"
    ordering = ["-created_at"]

    def has_add_permission(self, request):
        return False

    def has_change_permission(self, request, obj=None):
        return False

    def has_delete_permission(self, request, obj=None):
        return False
