"""Django's login-required middleware, asking about the user only for views that need it."""

from django.contrib.auth.middleware import LoginRequiredMiddleware as DjangoLoginRequiredMiddleware


class LoginRequiredMiddleware(DjangoLoginRequiredMiddleware):
    """Pages redirect anonymous visitors to the login page, as Django's does. Views that
    authenticate for themselves (the API, with DRF) are let through before the session is
    read: a session read that fails (the database is down) then fails inside DRF, which
    answers JSON, not Django's HTML error page."""

    def process_view(self, request, view_func, view_args, view_kwargs):
        if not getattr(view_func, "login_required", True):
            return None
        return super().process_view(request, view_func, view_args, view_kwargs)
