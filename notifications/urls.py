from django.urls import path

from notifications import views

urlpatterns = [
    path("profile/", views.profile, name="profile"),
]
