from django.contrib import admin
from django.urls import include, path

from core.api import DocsView, SchemaView
from core.sso import views as sso_views
from core.views import healthz
from incidents.dashboard.views import dashboard

api_v1 = [
    path("", include("agents.api_urls")),
    path("", include("traces.api_urls")),
    path("", include("incidents.api_urls")),
    path("", include("evals.api_urls")),
    path("", include("demo.gamedays.api_urls")),
]

urlpatterns = [
    path("", dashboard, name="dashboard"),
    path("healthz", healthz, name="healthz"),
    path("accounts/login/", sso_views.login, name="login"),
    path("accounts/logout/", sso_views.logout, name="logout"),
    path("accounts/sso/", include("core.sso.urls")),
    path("admin/", admin.site.urls),
    path("agents/", include("agents.urls")),
    path("keys/", include("agents.keys.urls")),
    path("traces/", include("traces.urls")),
    path("incidents/", include("incidents.urls")),
    path("evals/", include("evals.urls")),
    path("gamedays/", include("demo.gamedays.urls")),
    path("search/", include("incidents.search.urls")),
    path("api/v1/", include(api_v1)),
    path("v1/", include("traces.otlp_urls")),
    path("api/schema/", SchemaView.as_view(), name="schema"),
    path("api/docs/", DocsView.as_view(url_name="schema"), name="api-docs"),
]

# A retryable fault (a store down) answers 503 with Retry-After, never 500: see core.views.server_error.
handler500 = "core.views.server_error"
