from django.contrib import admin
from django.urls import include, path
from drf_spectacular.views import SpectacularAPIView, SpectacularSwaggerView

from config.api import register_routes, router
from reports.urls import api_urlpatterns as reports_api_urlpatterns

register_routes()

urlpatterns = [
    path("admin/", admin.site.urls),
    path("api/v1/reports/", include((reports_api_urlpatterns, "reports-api"))),
    path("api/v1/webhooks/", include("integrations.urls")),
    path("api/v1/", include(router.urls)),
    path("api/schema/", SpectacularAPIView.as_view(), name="schema"),
    path("api/docs/", SpectacularSwaggerView.as_view(url_name="schema"), name="api-docs"),
    path("accounts/", include("django.contrib.auth.urls")),
    path("billing/", include("billing.urls")),
    path("reports/", include("reports.urls")),
    path("", include("projects.urls")),
]
