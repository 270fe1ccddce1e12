"""Sign-in by email, whatever its case: people's usernames are their lower-cased email."""

from django.contrib.auth.backends import ModelBackend


def sign_in_username(request, credentials: dict | None) -> str | None:
    """The account a sign-in is for, as the backend reads it: failed sign-ins for
    `Ana@Example.com ` and `ana@example.com` count against one account (django-axes)."""
    username = (credentials or {}).get("username")
    if username is None and request is not None and request.method == "POST":
        username = request.POST.get("username")
    return username.strip().lower() if isinstance(username, str) else username


class EmailBackend(ModelBackend):
    def authenticate(self, request, username=None, password=None, **kwargs):
        if username:
            username = username.strip().lower()
        return super().authenticate(request, username=username, password=password, **kwargs)
