from django.urls import path

from approvals import views

urlpatterns = [
    path("", views.queue, name="home"),
    path("actions/<str:action_id>/", views.detail, name="review-detail"),
    path("actions/<str:action_id>/decide", views.decide, name="review-decide"),
    path("actions/<str:action_id>/checkpoints/<uuid:checkpoint_id>/data", views.checkpoint_data, name="review-checkpoint-data"),
    path("decisions/bulk", views.bulk, name="review-bulk"),
]
