from django.contrib import admin
from django.contrib.auth import views as auth_views
from django.contrib.staticfiles.urls import staticfiles_urlpatterns
from django.urls import include, path, re_path
from drf_spectacular.views import SpectacularAPIView

from . import rest, views

urlpatterns = [
    path("", views.desk, name="desk"),
    path("login/", auth_views.LoginView.as_view(redirect_authenticated_user=True), name="login"),
    path("logout/", auth_views.LogoutView.as_view(), name="logout"),
    path("admin/", admin.site.urls),
    path("i18n/", include("django.conf.urls.i18n")),
    path("api/trading/", include("trading.urls")),
    path("api/market/", include("market.urls")),
    path("api/schema/", SpectacularAPIView.as_view(), name="api-schema"),
    # Last of the API routes: anything else under /api/ is a JSON 404, never Django's HTML page.
    re_path(r"^api/", rest.not_found),
    path("", include("realtime.urls")),
]

# Static files from the app itself in debug (daphne in tests, `make run`); a proxy serves them in production.
urlpatterns += staticfiles_urlpatterns()
