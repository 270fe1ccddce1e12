"""`Authorization: Bearer <token>` for the REST API.

Tokens are looked up once, with their user's role, and kept in a per-process cache, so
an API call costs no query for its token or role. Any change that could make a cached
token wrong (revoked, deleted, its user deactivated or given another role, its account
changed) is announced on the `hitl_api_tokens` channel (common.changes), and every
process drops its cache on its next call.
"""

from datetime import timedelta

from django.utils import timezone
from drf_spectacular.extensions import OpenApiAuthenticationExtension
from rest_framework import authentication, exceptions

from accounts.models import ApiToken
from accounts.selectors import user_role
from accounts.services import TOKENS_CHANNEL, token_hash
from common.changes import feed

# Recording every use would turn each API read into a write; a few minutes' precision is enough.
LAST_USED_PRECISION = timedelta(minutes=5)
_CACHE_LIMIT = 10_000
_changes = feed.subscribe(TOKENS_CHANNEL)
_tokens: dict[str, ApiToken] = {}


def _token_for(key_hash: str) -> ApiToken | None:
    if _changes.changed():
        _tokens.clear()
    token = _tokens.get(key_hash)
    if token is None:
        token = (
            ApiToken.objects.select_related("user", "user__account")
            .filter(key_hash=key_hash, revoked_at__isnull=True, user__is_active=True)
            .first()
        )
        if token is None:  # unknown tokens are not cached: guessing must not fill memory
            return None
        user_role(token.user)  # cached on the user object, which each request copies
        if len(_tokens) >= _CACHE_LIMIT:
            _tokens.clear()
        _tokens[key_hash] = token
    return token


def _own_copy(user):
    """A shallow copy of a cached user, as copy.copy() makes one (Model.__getstate__: the
    instance's state and its cache of related objects copied too), in a tenth of the time:
    it is made on every API call. The state is copied as copy.copy() copies a plain object
    (a new instance given the same attributes), without going through its reduce protocol."""
    clone = object.__new__(type(user))
    clone.__dict__.update(user.__dict__)
    state = object.__new__(type(user._state))
    state.__dict__.update(user._state.__dict__)
    state.fields_cache = user._state.fields_cache.copy()
    clone._state = state
    return clone


class BearerTokenAuthentication(authentication.BaseAuthentication):
    keyword = "Bearer"

    def authenticate(self, request):
        """(user, token), None without a bearer token, or AuthenticationFailed. Once per
        request, whoever asks first (the engine path, zakops_hitl.engine, or DRF): the
        outcome is kept on Django's request and given again."""
        call = getattr(request, "_request", request)  # DRF's request wraps Django's
        kept = call.__dict__.get("_hitl_bearer")
        if kept is None:
            try:
                kept = (True, self._authenticate(request))
            except exceptions.AuthenticationFailed as exc:
                kept = (False, exc)
            call._hitl_bearer = kept
        authenticated, outcome = kept
        if not authenticated:
            raise outcome
        return outcome

    def _authenticate(self, request):
        header = authentication.get_authorization_header(request).split()
        if not header or header[0].lower() != self.keyword.lower().encode():
            return None
        if len(header) != 2:
            raise exceptions.AuthenticationFailed("Authorization header must be 'Bearer <token>'.")
        try:
            raw = header[1].decode()
        except UnicodeDecodeError:
            raise exceptions.AuthenticationFailed("Invalid token.") from None
        token = _token_for(token_hash(raw))
        if token is None:
            raise exceptions.AuthenticationFailed("Invalid or revoked token.")
        now = timezone.now()
        if token.last_used_at is None or now - token.last_used_at > LAST_USED_PRECISION:
            ApiToken.objects.filter(pk=token.pk).update(last_used_at=now)
            token.last_used_at = now
        # Each request gets its own user object, so nothing a view sets on it leaks.
        return _own_copy(token.user), token

    def authenticate_header(self, request):
        return self.keyword


class BearerTokenScheme(OpenApiAuthenticationExtension):
    target_class = BearerTokenAuthentication
    name = "bearerAuth"

    def get_security_definition(self, auto_schema):
        return {"type": "http", "scheme": "bearer"}
