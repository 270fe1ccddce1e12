"""Reads about who a user is: role, service account, actor id."""

import uuid
from collections import defaultdict
from dataclasses import dataclass

from django.contrib.auth import get_user_model
from django.db.models import Q

from zakops.models import OperatorRole

# The strongest role first: a person in several role groups has the strongest.
ROLE_ORDER = (OperatorRole.ADMIN, OperatorRole.OPERATOR, OperatorRole.VIEWER)


def _strongest_role(names) -> str | None:
    return next((role for role in ROLE_ORDER if role in names), None)


def user_role(user) -> str | None:
    """`admin`, `operator`, `viewer`, or None (anonymous, service account, no role).

    A superuser counts as an admin, also one made with `createsuperuser` (which puts it in
    no group). Cached on the user object, so a request asks the database once.
    """
    if not user.is_authenticated:
        return None
    cached = getattr(user, "_hitl_role", False)
    if cached is not False:
        return cached
    if user.is_superuser:
        user._hitl_role = OperatorRole.ADMIN
        return OperatorRole.ADMIN
    role = _strongest_role(set(user.groups.filter(name__in=OperatorRole.values).values_list("name", flat=True)))
    user._hitl_role = role
    return role


def user_is_service(user) -> bool:
    account = getattr(user, "account", None) if user.is_authenticated else None
    return bool(account and account.is_service)


def user_actor_id(user):
    """The UUID that goes into approved_by / resumed_by for this user, or None."""
    account = getattr(user, "account", None) if user.is_authenticated else None
    return account.actor_id if account else None


def user_can_act(user) -> bool:
    """Service accounts, operators and admins may change state; viewers only read."""
    return user_is_service(user) or user_role(user) in ("operator", "admin")


@dataclass(frozen=True)
class Actor:
    """Who did something, as the audit trail records it."""

    kind: str  # "user", "service" or "system"
    name: str  # an email, a service account's name, or "zakops-hitl"
    actor_id: uuid.UUID | None  # operators.id for people, the account's id for services
    role: str | None  # admin, operator, viewer; None for services and the system


SYSTEM = Actor(kind="system", name="zakops-hitl", actor_id=None, role=None)


def actor_of(user) -> Actor:
    if user_is_service(user):
        return Actor(kind="service", name=user.get_username(), actor_id=user_actor_id(user), role=None)
    return Actor(kind="user", name=user.email or user.get_username(), actor_id=user_actor_id(user), role=user_role(user))


def people_in_roles(*, roles) -> list[Actor]:
    """Active people (not service accounts) whose role is one of `roles`, as the Actors
    they act as; two queries however many there are."""
    User = get_user_model()
    people = list(
        User.objects.filter(is_active=True, account__is_service=False)
        .filter(Q(is_superuser=True) | Q(groups__name__in=roles))
        .distinct()
        .values_list("pk", "email", "username", "is_superuser", "account__actor_id")
    )
    groups = defaultdict(set)
    memberships = User.groups.through.objects.filter(
        user_id__in=[person[0] for person in people], group__name__in=OperatorRole.values
    ).values_list("user_id", "group__name")
    for user_id, name in memberships:
        groups[user_id].add(name)
    actors = []
    for pk, email, username, is_superuser, actor_id in people:
        role = OperatorRole.ADMIN if is_superuser else _strongest_role(groups[pk])
        if role in roles:
            actors.append(Actor(kind="user", name=email or username, actor_id=actor_id, role=role))
    return actors
