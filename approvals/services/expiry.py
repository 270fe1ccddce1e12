"""The sweep's expiry of overdue open requests: each is recorded as expired at its
deadline, its action rejected (an expired action must never run) and its checkpoints
cancelled, and the notices to send are written (`approvals.notices`)."""

from django.db import transaction
from django.db.models import Q
from django.utils import timezone

from accounts.selectors import SYSTEM
from approvals import notices
from approvals.models import EXPIRED_REASON, OPEN_STATES, ApprovalRequest, RequestState
from approvals.services import events, locks
from checkpoints.services import checkpoints_cancel_for_action
from zakops.models import ActionStatus


def approvals_expire(*, now=None, batch: int = 500) -> int:
    """Expire overdue open requests, each in its own transaction. Safe with several
    sweeps at once: each request is claimed by a compare-and-set, so it expires once.
    One a reviewer is deciding at that moment is skipped, not waited for."""
    now = now or timezone.now()
    expired, after = 0, None
    overdue = ApprovalRequest.objects.filter(state__in=OPEN_STATES, expires_at__lte=now).order_by("pk")
    while True:
        page = list((overdue.filter(pk__gt=after) if after else overdue).values_list("pk", flat=True)[:batch])
        if not page:
            return expired
        expired += sum(_expire_one(pk, now) for pk in page)
        after = page[-1]


def _expire_one(request_id, now) -> bool:
    with transaction.atomic():
        request = ApprovalRequest.objects.filter(pk=request_id).first()
        if request is None:
            return False
        # Action first, as everywhere; one a reviewer is deciding right now is left to them.
        action = locks.action_lock(request.action_id, skip_locked=True)
        if action is None:
            return False
        # Recorded as expired at its deadline, as the poll has reported it since then.
        expired = locks.request_compare_and_set(
            request, when=Q(state__in=OPEN_STATES, expires_at__lte=now), now=now, state=RequestState.EXPIRED,
            decided_by_name=SYSTEM.name, decided_at=request.expires_at, reason=EXPIRED_REASON,
        )
        if not expired:
            return False
        events.action_update(action, status=ActionStatus.REJECTED)  # an expired action must never run
        checkpoints_cancel_for_action(action_id=action.action_id)
        events.transition_record(action=action, request=request, actor=SYSTEM, reason=EXPIRED_REASON)
        notices.notice(kind=notices.EXPIRED, request=request, action=action, actor=SYSTEM)
        notices.notice(kind=notices.DECIDED, request=request, action=action, actor=SYSTEM, reason=EXPIRED_REASON)
        return True
