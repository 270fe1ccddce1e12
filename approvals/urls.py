from django.urls import path, register_converter

from approvals import views


class ActionIdConverter:
    """An action id in a page's path: no slash, and no NUL (PostgreSQL can not compare
    text holding one), so such a path is a 404 page rather than a database error."""

    regex = "[^/\x00]+"

    def to_python(self, value):
        return value

    def to_url(self, value):
        return value


register_converter(ActionIdConverter, "action_id")

urlpatterns = [
    path("", views.queue, name="home"),
    path("actions/<action_id:action_id>/", views.detail, name="review-detail"),
    path("actions/<action_id:action_id>/decide", views.decide, name="review-decide"),
    path("actions/<action_id:action_id>/claim", views.claim, name="review-claim"),
    path("actions/<action_id:action_id>/release", views.release, name="review-release"),
    path("actions/<action_id:action_id>/checkpoints/<uuid:checkpoint_id>/data", views.checkpoint_data, name="review-checkpoint-data"),
    path("decisions/bulk", views.bulk, name="review-bulk"),
]
