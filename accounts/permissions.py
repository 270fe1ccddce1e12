"""DRF permissions by role."""

from rest_framework.permissions import SAFE_METHODS, BasePermission

from accounts.selectors import user_actor_id, user_can_act


class ActorOrReadOnly(BasePermission):
    """Anyone authenticated reads; changes need a service account, an operator or an admin
    with an operator id (SPEC §3 roles)."""

    message = "Viewers can read but not change anything; this needs an operator, an admin or a service account."

    def has_permission(self, request, view):
        if not request.user.is_authenticated:
            return False  # DRF answers 401
        if request.method in SAFE_METHODS:
            return True
        if not user_can_act(request.user):
            return False
        if user_actor_id(request.user) is None:
            self.message = "This account has no operator id; an admin can fix that with create_operator."
            return False
        return True
