from django.contrib import admin
from django.contrib.auth.views import LoginView
from django.urls import include, path
from drf_spectacular.views import SpectacularAPIView, SpectacularSwaggerView

from config.api import register_routes, router
from config.throttling import (
    ThrottledAdminAuthenticationForm,
    ThrottledAuthenticationForm,
    too_many_requests_when_throttled,
)
from reports.urls import api_urlpatterns as reports_api_urlpatterns

register_routes()

# Both logins count failed attempts and refuse a username or address that failed too often (429).
admin.site.login_form = ThrottledAdminAuthenticationForm
portal_login = too_many_requests_when_throttled(LoginView.as_view(authentication_form=ThrottledAuthenticationForm))

urlpatterns = [
    # Ahead of the admin's and django.contrib.auth's own routes, which they replace (same paths and names).
    path("admin/login/", too_many_requests_when_throttled(admin.site.login)),
    path("admin/", admin.site.urls),
    path("api/v1/reports/", include((reports_api_urlpatterns, "reports-api"))),
    path("api/v1/webhooks/", include("integrations.urls")),
    path("api/v1/", include(router.urls)),
    path("api/schema/", SpectacularAPIView.as_view(), name="schema"),
    path("api/docs/", SpectacularSwaggerView.as_view(url_name="schema"), name="api-docs"),
    path("accounts/login/", portal_login, name="login"),
    path("accounts/", include("django.contrib.auth.urls")),
    path("billing/", include("billing.urls")),
    path("reports/", include("reports.urls")),
    path("", include("projects.urls")),
]
