"""Writes for people, roles and tokens. Each keeps `zakops.operators` in step."""

import hashlib
import re
import secrets

from django.contrib.auth import get_user_model
from django.contrib.auth.models import Group
from django.core.exceptions import ValidationError
from django.core.validators import validate_email
from django.db import transaction
from django.utils import timezone

from accounts.models import Account, ApiToken
from accounts.selectors import user_role
from common.changes import feed
from zakops.models import Operator, OperatorRole

TOKEN_PREFIX = "zkh_"
# Announced when a token, or the user or account behind one, changes (accounts 0003 has
# the PostgreSQL triggers); API processes then drop their cached tokens.
TOKENS_CHANNEL = "hitl_api_tokens"
SERVICE_NAME_RE = re.compile(r"^[a-z0-9][a-z0-9._-]{0,99}$")


def token_hash(raw: str) -> str:
    return hashlib.sha256(raw.encode()).hexdigest()


def user_role_set(*, user, role: str) -> None:
    """Put `user` in exactly one role group; admins also get Django admin."""
    if role not in OperatorRole.values:
        raise ValidationError(f"role must be one of {', '.join(OperatorRole.values)}")
    groups = Group.objects.filter(name__in=OperatorRole.values)
    user.groups.remove(*groups)
    user.groups.add(Group.objects.get(name=role))
    user.is_staff = user.is_superuser = role == OperatorRole.ADMIN
    user.save(update_fields=["is_staff", "is_superuser"])
    user.__dict__.pop("_hitl_role", None)
    api_tokens_changed()  # API processes cache the role with the token


@transaction.atomic
def operator_sync(*, user, role: str | None = None) -> Operator:
    """Mirror a reviewer into zakops.operators and link the account to that row.

    The row the person is already linked to follows them (a new email or role updates
    it, so their UUID in approved_by/resumed_by stays theirs); otherwise the row with
    their email is used, or created."""
    if role is None:
        role = user_role(user)
    now = timezone.now()
    account = Account.objects.filter(user=user, is_service=False).first()
    operator = Operator.objects.filter(pk=account.actor_id).first() if account else None
    if operator is None or Operator.objects.filter(email=user.email).exclude(pk=operator.pk).exists():
        operator, _ = Operator.objects.get_or_create(
            email=user.email,
            defaults={"name": user.get_full_name() or user.email, "role": role, "created_at": now, "updated_at": now},
        )
    if (operator.email, operator.role) != (user.email, role):
        operator.email, operator.role, operator.updated_at = user.email, role, now
        operator.save(update_fields=["email", "role", "updated_at"])
    Account.objects.update_or_create(user=user, defaults={"actor_id": operator.id, "is_service": False})
    return operator


@transaction.atomic
def operator_upsert(*, email: str, role: str, password: str | None = None, name: str = ""):
    """Create or update a reviewer with `role`; returns the user."""
    email = email.strip().lower()
    validate_email(email)
    User = get_user_model()
    user, created = User.objects.get_or_create(username=email, defaults={"email": email})
    if name:
        user.first_name = name[:150]
    if password is not None:
        user.set_password(password)
    elif created:
        user.set_unusable_password()
    user.email = email
    user.save()
    user_role_set(user=user, role=role)
    operator_sync(user=user, role=role)
    return user


@transaction.atomic
def service_account_ensure(*, name: str):
    """The service account called `name`, created if needed. It can not sign in to pages."""
    if not SERVICE_NAME_RE.match(name):
        raise ValidationError(
            "service account names are 1-100 characters of a-z, 0-9, '.', '_' or '-', starting with a letter or digit"
        )
    User = get_user_model()
    user, created = User.objects.get_or_create(username=name)
    if created:
        user.set_unusable_password()
        user.save(update_fields=["password"])
    elif not hasattr(user, "account") or not user.account.is_service:
        raise ValidationError(f"{name!r} is a person's account, not a service account")
    Account.objects.get_or_create(user=user, defaults={"is_service": True})
    return user


def api_tokens_changed() -> None:
    feed.announce(TOKENS_CHANNEL)


@transaction.atomic
def api_tokens_revoke(*, tokens) -> int:
    """Revoke the given tokens (a queryset); they stop working at once in every process."""
    count = tokens.filter(revoked_at__isnull=True).update(revoked_at=timezone.now())
    api_tokens_changed()
    return count


def api_token_create(*, user, name: str, raw: str | None = None) -> tuple[ApiToken, str]:
    """A new token for `user`; the raw token is returned once and never stored. `raw` is
    for a token derived elsewhere (the demo's); otherwise a random one is made."""
    if raw is None:
        raw = TOKEN_PREFIX + secrets.token_urlsafe(32)
    elif not raw.startswith(TOKEN_PREFIX) or len(raw) < len(TOKEN_PREFIX) + 32:
        raise ValidationError(f"a token starts with {TOKEN_PREFIX!r} and has at least 32 characters after it")
    token = ApiToken.objects.create(user=user, name=name[:100], prefix=raw[:12], key_hash=token_hash(raw))
    return token, raw
