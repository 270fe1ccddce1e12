"""`Idempotency-Key` for the API's state-changing POSTs.

The first response to a key is stored with a fingerprint of the request, in the same
transaction as the change it made; a repeat with the same key and body gets that
response again (`Idempotent-Replayed: true`), the same key with another body a 422.
A second request with a key still in flight waits for the first (the key's unique index)
and then replays it. Keys are per user and kept 48 hours (hitl_sweep forgets older ones).
"""

import hashlib
import json
from datetime import timedelta
from functools import wraps

from django.db import IntegrityError, transaction
from django.utils import timezone
from rest_framework.response import Response
from rest_framework.utils.encoders import JSONEncoder

from common.errors import HitlError, InvalidInput
from common.models import IdempotencyRecord

HEADER = "Idempotency-Key"
MAX_KEY = 255


class KeyReused(HitlError):
    status = 422


def _fingerprint(request) -> str:
    body = json.dumps(request.data, sort_keys=True, cls=JSONEncoder)
    return hashlib.sha256(f"{request.method} {request.path}\n{body}".encode()).hexdigest()


def _replay(record: IdempotencyRecord, fingerprint: str) -> Response:
    if record.fingerprint != fingerprint:
        raise KeyReused(f"{HEADER} {record.key!r} was already used with a different request.")
    return Response(record.body, status=record.status_code, headers={"Idempotent-Replayed": "true"})


def idempotent(handler):
    """Decorate an API view's post(): honour an Idempotency-Key header when one is sent."""

    @wraps(handler)
    def post(view, request, *args, **kwargs):
        key = request.headers.get(HEADER)
        if key is None:
            return handler(view, request, *args, **kwargs)
        if not key.strip() or len(key) > MAX_KEY:
            raise InvalidInput(f"{HEADER} must be 1 to {MAX_KEY} characters.")
        fingerprint = _fingerprint(request)
        with transaction.atomic():
            record = IdempotencyRecord.objects.filter(user=request.user, key=key).first()
            if record is not None:
                return _replay(record, fingerprint)
            try:
                # Claim the key first: a concurrent request with it waits here until
                # this transaction ends, then replays what it stored.
                with transaction.atomic():
                    record = IdempotencyRecord.objects.create(
                        user=request.user, key=key, fingerprint=fingerprint, status_code=0, body={}
                    )
            except IntegrityError:
                return _replay(IdempotencyRecord.objects.get(user=request.user, key=key), fingerprint)
            # An error response raises and rolls the claim back with the change: only
            # what succeeded is replayed; a failed request may be sent again.
            response = handler(view, request, *args, **kwargs)
            record.status_code = response.status_code
            record.body = json.loads(json.dumps(response.data, cls=JSONEncoder))
            record.save(update_fields=["status_code", "body"])
            return response

    return post


KEEP = timedelta(hours=48)  # keys are honoured for at least 24 h


def idempotency_records_forget(*, now=None) -> int:
    """Forget the answers kept for keys older than KEEP (hitl_sweep)."""
    cutoff = (now or timezone.now()) - KEEP
    deleted, _ = IdempotencyRecord.objects.filter(created_at__lt=cutoff).delete()
    return deleted
