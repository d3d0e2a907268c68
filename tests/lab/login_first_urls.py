"""A URL conf with the lab's pages before the lead's (so accounts/login/ is the rate-limited view)."""
from lab import site_urls, urls

urlpatterns = site_urls.urlpatterns + urls.urlpatterns
