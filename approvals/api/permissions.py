"""Who may knock at the API's deciding doors at all."""

from rest_framework.exceptions import PermissionDenied
from rest_framework.permissions import BasePermission

from accounts.selectors import actor_of
from approvals.deciders import actor_refusal


class MayDecide(BasePermission):
    """Operators and admins with an operator record: the callers `actor_refusal` lets
    through. Viewers and service accounts never decide, claim or release, so they get a
    403 naming the rule before anything is read; the services apply the same rule again,
    and then the rules of each request (level, four-eyes, claims)."""

    def has_permission(self, request, view):
        if not request.user.is_authenticated:
            return False  # DRF answers 401
        refusal = actor_refusal(actor_of(request.user))
        if refusal:
            raise PermissionDenied(refusal)
        return True
