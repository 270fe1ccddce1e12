from django.contrib import admin
from django.contrib.auth import views as auth_views
from django.urls import include, path, re_path
from drf_spectacular import renderers
from drf_spectacular.views import SpectacularAPIView

from accounts.forms import SignInForm
from common.api import HitlAPIView, NotFoundView
from zakops_hitl import views


class SchemaView(HitlAPIView, SpectacularAPIView):
    """The OpenAPI 3 schema, for signed-in people and token holders only.

    JSON by default (errors too); YAML with `?format=yaml` or by Accept header."""

    renderer_classes = [
        renderers.OpenApiJsonRenderer2,
        renderers.OpenApiJsonRenderer,
        renderers.OpenApiYamlRenderer,
        renderers.OpenApiYamlRenderer2,
    ]


admin.site.site_header = "ZakOps HITL admin"
admin.site.site_title = "ZakOps HITL admin"
admin.site.index_title = "Rules, settings, people and tokens"

api_patterns = [
    path("schema/", SchemaView.as_view(), name="api-schema"),
    path("", include("risk.api.urls")),
    path("", include("checkpoints.api.urls")),
    path("", include("approvals.api.urls")),
    # Any path, a newline in it too (`.*` stops at one, which was Django's HTML 404).
    re_path(r"^[\s\S]*$", NotFoundView.as_view(), name="api-not-found"),
]

urlpatterns = [
    path("api/hitl/", include(api_patterns)),  # first: the engine's calls match without trying the pages
    path("api/hitl", NotFoundView.as_view(), name="api-root"),  # JSON (401 or 404), not a redirect to the slash
    path("", include("approvals.urls")),
    path("", include("notifications.urls")),
    path("healthz", views.health, name="health"),
    path("readyz", views.ready, name="ready"),
    path("metrics", views.MetricsView.as_view(), name="metrics"),
    path("favicon.ico", views.favicon),
    path("login/", auth_views.LoginView.as_view(authentication_form=SignInForm, redirect_authenticated_user=True), name="login"),
    path("logout/", auth_views.LogoutView.as_view(), name="logout"),
    path("admin/", admin.site.urls),
]

# JSON where the view answers JSON, Django's pages elsewhere (common.api).
handler400 = "common.api.bad_request"
handler403 = "common.api.permission_denied"
handler404 = "common.api.page_not_found"
handler500 = "common.api.server_error"
