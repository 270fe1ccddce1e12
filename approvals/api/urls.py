from django.urls import path

from approvals.api import views

urlpatterns = [
    path("approval-queue", views.ApprovalQueueView.as_view(), name="api-approval-queue"),
    path("approval-requests", views.ApprovalRequestsView.as_view(), name="api-approval-requests"),
    path("actions/<str:action_id>/approval", views.ActionApprovalView.as_view(), name="api-action-approval"),
    path("actions/<str:action_id>/approve", views.ApproveView.as_view(), name="api-action-approve"),
    path("actions/<str:action_id>/reject", views.RejectView.as_view(), name="api-action-reject"),
    path("actions/<str:action_id>/quarantine", views.QuarantineView.as_view(), name="api-action-quarantine"),
    path("actions/<str:action_id>/claim", views.ClaimView.as_view(), name="api-action-claim"),
    path("actions/<str:action_id>/release", views.ReleaseView.as_view(), name="api-action-release"),
    path("decisions", views.DecisionsView.as_view(), name="api-decisions"),
    path("actions/<str:action_id>/cancel", views.ActionCancelView.as_view(), name="api-action-cancel"),
    path("actions/<str:action_id>", views.EngineActionView.as_view(), name="api-action"),
]
