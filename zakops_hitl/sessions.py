"""Sessions in the database, as Django keeps them, looked up only for keys Django could
have issued."""

from django.contrib.sessions.backends.base import VALID_KEY_CHARS
from django.contrib.sessions.backends.db import SessionStore as DatabaseSessionStore

_KEY_CHARS = frozenset(VALID_KEY_CHARS)


class SessionStore(DatabaseSessionStore):
    """A cookie that is not a key Django makes (lowercase letters and digits) is no
    session, without a query: PostgreSQL would refuse a NUL in it with an error, and the
    visitor would get a server error instead of the login page or a 401."""

    def _validate_session_key(self, key):
        return super()._validate_session_key(key) and _KEY_CHARS.issuperset(key)
