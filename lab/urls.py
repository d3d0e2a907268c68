from django.contrib import admin
from django.contrib.auth import views as auth_views
from django.urls import path

from lab import site_urls
from lab.views import auth as auth_pages
from lab.views import health

urlpatterns = [
    path("healthz", health.healthz, name="healthz"),
    path("accounts/login/", auth_pages.login_view, name="login"),  # rate-limited
    path("accounts/logout/", auth_views.LogoutView.as_view(), name="logout"),
    path("admin/", admin.site.urls),
    *site_urls.urlpatterns,  # the pages and the API (lab/views/, lab/api/)
]
