"""Login with a rate limit on failures (lab.services.ratelimit)."""
from __future__ import annotations

from django.contrib.auth import views as auth_views

from lab.services.ratelimit import WINDOW_S, client_ip, login_blocked, login_failed, login_succeeded


class RateLimitedLoginView(auth_views.LoginView):
    def post(self, request, *args, **kwargs):
        username = request.POST.get("username", "")
        if login_blocked(username, client_ip(request)):
            form = self.get_form_class()(request)  # unbound: a blocked attempt never reaches authenticate()
            context = self.get_context_data(form=form, rate_limited=True, retry_after=WINDOW_S)
            response = self.render_to_response(context, status=429)
            response["Retry-After"] = str(WINDOW_S)
            return response
        return super().post(request, *args, **kwargs)

    def form_invalid(self, form):
        login_failed(self.request.POST.get("username", ""), client_ip(self.request))
        return super().form_invalid(form)

    def form_valid(self, form):
        login_succeeded(self.request.POST.get("username", ""), client_ip(self.request))
        return super().form_valid(form)


login_view = RateLimitedLoginView.as_view()
