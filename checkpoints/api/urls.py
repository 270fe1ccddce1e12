from django.urls import path

from checkpoints.api import views

prefix = "actions/<str:action_id>/checkpoints"
urlpatterns = [
    path(prefix, views.CheckpointsView.as_view(), name="api-checkpoints"),
    # "latest" comes before the by-name route: a checkpoint named "latest" is read with
    # latest?checkpoint_name=latest.
    path(f"{prefix}/latest", views.CheckpointLatestView.as_view(), name="api-checkpoint-latest"),
    path(f"{prefix}/<uuid:checkpoint_id>/resume", views.CheckpointResumeView.as_view(), name="api-checkpoint-resume"),
    path(f"{prefix}/<uuid:checkpoint_id>/cancel", views.CheckpointCancelView.as_view(), name="api-checkpoint-cancel"),
    path(f"{prefix}/<str:checkpoint_name>", views.CheckpointByNameView.as_view(), name="api-checkpoint-by-name"),
    # By id and by correlation: outside any action's path, so an id is never read as a name.
    path("checkpoints/latest", views.CheckpointLatestByCorrelationView.as_view(), name="api-checkpoint-latest-by-correlation"),
    path("checkpoints/<uuid:checkpoint_id>", views.CheckpointByIdView.as_view(), name="api-checkpoint-by-id"),
]
