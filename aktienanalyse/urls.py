from django.contrib import admin
from django.contrib.admin.views.decorators import staff_member_required
from django.contrib.auth import views as auth_views
from django.contrib.staticfiles.urls import staticfiles_urlpatterns
from django.urls import include, path, re_path
from drf_spectacular.views import SpectacularAPIView, SpectacularSwaggerSplitView

from realtime import rest as realtime_rest

from . import rest, views

urlpatterns = [
    path("", views.desk, name="desk"),
    # Browsers ask for /favicon.ico on pages that name no icon (the admin's).
    path("favicon.ico", views.favicon),
    path("login/", auth_views.LoginView.as_view(redirect_authenticated_user=True), name="login"),
    path("logout/", auth_views.LogoutView.as_view(), name="logout"),
    path("admin/", admin.site.urls),
    path("i18n/", include("django.conf.urls.i18n")),
    path("api/trading/", include("trading.urls")),
    path("api/market/", include("market.urls")),
    re_path(r"^api/announcements/?$", realtime_rest.AnnouncementView.as_view(), name="announcements"),
    path("api/schema/", SpectacularAPIView.as_view(), name="api-schema"),
    # Swagger UI from static/vendor/ (no CDN); its start script is a separate response (?script),
    # as the Content-Security-Policy allows no inline script. Staff only, like the schema.
    path(
        "api/docs/",
        staff_member_required(
            SpectacularSwaggerSplitView.as_view(url_name="api-schema", template_name="api_docs.html"), login_url="login"
        ),
        name="api-docs",
    ),
    # Last of the API routes: anything else under /api/ is a JSON 404, never Django's HTML page.
    re_path(r"^api/", rest.not_found),
    path("", include("realtime.urls")),
]

# Static files from the app itself in debug (daphne in tests, `make run`); a proxy serves them in production.
urlpatterns += staticfiles_urlpatterns()
