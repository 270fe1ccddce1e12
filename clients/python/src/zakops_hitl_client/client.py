"""The clients: HitlClient (blocking) and AsyncHitlClient (asyncio), the same methods
with the same arguments and results."""

from __future__ import annotations

import asyncio
import time
from datetime import datetime, timezone
from typing import Any

import httpx

from zakops_hitl_client import _core
from zakops_hitl_client._core import Answer, Call, PollPace, Retry, segment, without_none, write
from zakops_hitl_client.errors import DecisionTimeout, HitlError, NotFound, Unavailable, error_for
from zakops_hitl_client.models import Approval, Assessment, Checkpoint, Decision, Resumed


class _Calls:
    """The calls both clients make, written once."""

    @staticmethod
    def assess_risk(action_type: str, inputs: dict[str, Any] | None, context: dict[str, Any] | None) -> Call:
        payload = without_none(action_type=action_type, action_data=inputs, context=context)
        return write("/assess-risk", payload, idempotent=False)  # a read: retried freely, no key

    @staticmethod
    def request_approval(action_id: str, action_type: str, inputs: dict[str, Any], *, title: str | None,
                         deal_id: str | None, requested_by: str | None, summary: str | None,
                         context: dict[str, Any] | None, idempotency_key: str | None) -> Call:
        payload = without_none(
            action_id=action_id, action_type=action_type, inputs=inputs, title=title, deal_id=deal_id,
            requested_by=requested_by, summary=summary, context=context,
        )
        return write("/approval-requests", payload, key=idempotency_key)

    @staticmethod
    def approval(action_id: str, etag: str | None = None) -> Call:
        headers = {"If-None-Match": etag} if etag else {}
        return Call("GET", f"/actions/{segment(action_id)}/approval", headers=headers)

    @staticmethod
    def action(action_id: str) -> Call:
        return Call("GET", f"/actions/{segment(action_id)}")

    @staticmethod
    def cancel(action_id: str, reason: str) -> Call:
        return write(f"/actions/{segment(action_id)}/cancel", {"reason": reason})

    @staticmethod
    def save_checkpoint(action_id: str, name: str, data: dict[str, Any], *, checkpoint_type: str,
                        correlation_id: str | None, run_id: str | None, expires_in_hours: float | None,
                        idempotency_key: str | None) -> Call:
        payload = without_none(
            checkpoint_name=name, checkpoint_data=data, checkpoint_type=checkpoint_type,
            correlation_id=correlation_id, run_id=run_id, expires_in_hours=expires_in_hours,
        )
        return write(f"/actions/{segment(action_id)}/checkpoints", payload, key=idempotency_key)

    @staticmethod
    def latest_checkpoint(action_id: str, name: str | None) -> Call:
        params = {"checkpoint_name": name} if name is not None else {}
        return _core.read("GET", f"/actions/{segment(action_id)}/checkpoints/latest", params)

    @staticmethod
    def resume_checkpoint(action_id: str, checkpoint_id: str) -> Call:
        return write(f"/actions/{segment(action_id)}/checkpoints/{segment(checkpoint_id)}/resume", {})


def _headers(token: str) -> dict[str, str]:
    if not token:
        raise ValueError("a token is needed (manage.py create_service_token NAME)")
    return {"Authorization": f"Bearer {token}", "Accept": "application/json", "User-Agent": _core.USER_AGENT}


def _inputs(answer: Answer) -> dict[str, Any] | None:
    inputs = _core.json_object(answer).get("inputs")
    return inputs if isinstance(inputs, dict) else None


def _seconds_to(deadline: str | None) -> float | None:
    if not deadline:
        return None
    try:
        moment = datetime.fromisoformat(deadline.replace("Z", "+00:00"))
    except ValueError:
        return None
    return (moment - datetime.now(timezone.utc)).total_seconds()


def _pause(pace: PollPace, approval: Approval, ends: float) -> float:
    """How long to sleep before the next poll: the pace, but wake at the request's deadline
    (it reads as expired from then on) and at the caller's timeout."""
    remaining = ends - time.monotonic()
    if remaining <= 0:
        raise DecisionTimeout(f"action {approval.action_id} is still {approval.state}", body=approval.raw)
    until_expiry = _seconds_to(approval.expires_at)
    pause = min(pace.current, remaining)
    if until_expiry is not None:
        pause = min(pause, max(until_expiry, 0.0) + 0.05)
    return pause


class HitlClient:
    """The blocking client. `base_url` is the server's address (http://host:port), `token`
    a service account's API token. Use it as a context manager, or close() it."""

    def __init__(self, base_url: str, token: str, *, timeout: float = 10.0, retry: Retry | None = None,
                 transport: httpx.BaseTransport | None = None) -> None:
        self.base_url = _core.api_root(base_url)
        self.retry = retry or Retry()
        self._http = httpx.Client(base_url=self.base_url, headers=_headers(token), timeout=timeout, transport=transport)

    def __enter__(self) -> HitlClient:
        return self

    def __exit__(self, *_: object) -> None:
        self.close()

    def close(self) -> None:
        self._http.close()

    def _send(self, call: Call) -> Answer:
        failure: HitlError = Unavailable("no attempt made")
        for attempt in range(self.retry.retries + 1):
            if attempt:
                time.sleep(self.retry.delay(attempt - 1))
            try:
                response = self._http.request(call.method, call.path, content=call.body, params=call.params,
                                              headers=call.headers)
            except httpx.TransportError as exc:
                failure = Unavailable(f"no answer from {self.base_url}: {exc!r}")
                continue
            if response.status_code != 503:
                return _core.answer_of(response)
            failure = error_for(503, _core.answer_of_error_body(response), response.text)
        raise failure

    def assess_risk(self, action_type: str, inputs: dict[str, Any] | None = None,
                    context: dict[str, Any] | None = None) -> Assessment:
        """Rate an action; `needs_person` says whether a person must decide it."""
        return Assessment.from_json(_core.json_object(self._send(_Calls.assess_risk(action_type, inputs, context))))

    def request_approval(self, action_id: str, action_type: str, inputs: dict[str, Any], *, title: str | None = None,
                         deal_id: str | None = None, requested_by: str | None = None, summary: str | None = None,
                         context: dict[str, Any] | None = None, idempotency_key: str | None = None) -> Approval:
        """Open the action's approval request, or get the one already open or last decided
        (`created` says which)."""
        call = _Calls.request_approval(
            action_id, action_type, inputs, title=title, deal_id=deal_id, requested_by=requested_by,
            summary=summary, context=context, idempotency_key=idempotency_key,
        )
        answer = self._send(call)
        return Approval.from_json(_core.json_object(answer), created=answer.status == 201)

    def get_approval(self, action_id: str) -> Approval:
        """The action's latest request as it stands now (an overdue one reads expired)."""
        return Approval.from_json(_core.json_object(self._send(_Calls.approval(action_id))))

    def approved_inputs(self, action_id: str) -> dict[str, Any] | None:
        """The action's inputs as stored now: after approval, the ones approved."""
        return _inputs(self._send(_Calls.action(action_id)))

    def decision_of(self, approval: Approval) -> Decision:
        """The Decision of a decided request, with the inputs approved when it was approved."""
        inputs = self.approved_inputs(approval.action_id) if approval.state == "approved" else None
        return Decision.of(approval, inputs)

    def wait_for_decision(self, action_id: str, *, timeout: float, poll_interval: float = 1.0) -> Decision:
        """Poll until the request is decided, expired or cancelled; DecisionTimeout when
        `timeout` seconds pass first. Sends If-None-Match once the server gave an ETag, and
        polls less often while nothing changes."""
        ends, pace, etag = time.monotonic() + timeout, PollPace(poll_interval), None
        approval: Approval | None = None
        while True:
            answer = self._send(_Calls.approval(action_id, etag))
            if answer.status == 304 and approval is not None:
                pace.unchanged()
            else:
                fresh = Approval.from_json(_core.json_object(answer))
                if approval is None or fresh.raw != approval.raw:
                    pace.changed()
                else:
                    pace.unchanged()
                approval, etag = fresh, answer.etag
                if approval.is_final:
                    return self.decision_of(approval)
            time.sleep(_pause(pace, approval, ends))
            if (_seconds_to(approval.expires_at) or 1.0) <= 0:
                etag = None  # past the deadline: ask without the tag, whatever the server's tag does

    def cancel(self, action_id: str, reason: str = "") -> Approval:
        """Withdraw the action: its open request and active checkpoints are cancelled."""
        return Approval.from_json(_core.json_object(self._send(_Calls.cancel(action_id, reason))))

    def save_checkpoint(self, action_id: str, name: str, data: dict[str, Any], *, checkpoint_type: str = "state",
                        correlation_id: str | None = None, run_id: str | None = None,
                        expires_in_hours: float | None = None, idempotency_key: str | None = None) -> Checkpoint:
        """Save a checkpoint with the action's next sequence number. With the same
        `idempotency_key` (within the server's 48 hours) the first save is answered again."""
        call = _Calls.save_checkpoint(
            action_id, name, data, checkpoint_type=checkpoint_type, correlation_id=correlation_id, run_id=run_id,
            expires_in_hours=expires_in_hours, idempotency_key=idempotency_key,
        )
        return Checkpoint.from_json(_core.json_object(self._send(call)))

    def latest_checkpoint(self, action_id: str, name: str | None = None) -> Checkpoint | None:
        """The action's latest active checkpoint (of that name), None when there is none."""
        try:
            return Checkpoint.from_json(_core.json_object(self._send(_Calls.latest_checkpoint(action_id, name))))
        except NotFound:
            return None

    def resume_checkpoint(self, action_id: str, checkpoint_id: str) -> Resumed:
        """Mark a checkpoint resumed; a second resume is a Conflict."""
        body = _core.json_object(self._send(_Calls.resume_checkpoint(action_id, checkpoint_id)))
        return Resumed(checkpoint_id=str(body.get("checkpoint_id")), resumed_by=body.get("resumed_by"))


class AsyncHitlClient:
    """The asyncio client: HitlClient's methods, awaited. Use it as an async context
    manager, or await aclose()."""

    def __init__(self, base_url: str, token: str, *, timeout: float = 10.0, retry: Retry | None = None,
                 transport: httpx.AsyncBaseTransport | None = None) -> None:
        self.base_url = _core.api_root(base_url)
        self.retry = retry or Retry()
        self._http = httpx.AsyncClient(
            base_url=self.base_url, headers=_headers(token), timeout=timeout, transport=transport
        )

    async def __aenter__(self) -> AsyncHitlClient:
        return self

    async def __aexit__(self, *_: object) -> None:
        await self.aclose()

    async def aclose(self) -> None:
        await self._http.aclose()

    async def _send(self, call: Call) -> Answer:
        failure: HitlError = Unavailable("no attempt made")
        for attempt in range(self.retry.retries + 1):
            if attempt:
                await asyncio.sleep(self.retry.delay(attempt - 1))
            try:
                response = await self._http.request(call.method, call.path, content=call.body, params=call.params,
                                                    headers=call.headers)
            except httpx.TransportError as exc:
                failure = Unavailable(f"no answer from {self.base_url}: {exc!r}")
                continue
            if response.status_code != 503:
                return _core.answer_of(response)
            failure = error_for(503, _core.answer_of_error_body(response), response.text)
        raise failure

    async def assess_risk(self, action_type: str, inputs: dict[str, Any] | None = None,
                          context: dict[str, Any] | None = None) -> Assessment:
        answer = await self._send(_Calls.assess_risk(action_type, inputs, context))
        return Assessment.from_json(_core.json_object(answer))

    async def request_approval(self, action_id: str, action_type: str, inputs: dict[str, Any], *,
                               title: str | None = None, deal_id: str | None = None, requested_by: str | None = None,
                               summary: str | None = None, context: dict[str, Any] | None = None,
                               idempotency_key: str | None = None) -> Approval:
        call = _Calls.request_approval(
            action_id, action_type, inputs, title=title, deal_id=deal_id, requested_by=requested_by,
            summary=summary, context=context, idempotency_key=idempotency_key,
        )
        answer = await self._send(call)
        return Approval.from_json(_core.json_object(answer), created=answer.status == 201)

    async def get_approval(self, action_id: str) -> Approval:
        return Approval.from_json(_core.json_object(await self._send(_Calls.approval(action_id))))

    async def approved_inputs(self, action_id: str) -> dict[str, Any] | None:
        return _inputs(await self._send(_Calls.action(action_id)))

    async def decision_of(self, approval: Approval) -> Decision:
        inputs = await self.approved_inputs(approval.action_id) if approval.state == "approved" else None
        return Decision.of(approval, inputs)

    async def wait_for_decision(self, action_id: str, *, timeout: float, poll_interval: float = 1.0) -> Decision:
        ends, pace, etag = time.monotonic() + timeout, PollPace(poll_interval), None
        approval: Approval | None = None
        while True:
            answer = await self._send(_Calls.approval(action_id, etag))
            if answer.status == 304 and approval is not None:
                pace.unchanged()
            else:
                fresh = Approval.from_json(_core.json_object(answer))
                if approval is None or fresh.raw != approval.raw:
                    pace.changed()
                else:
                    pace.unchanged()
                approval, etag = fresh, answer.etag
                if approval.is_final:
                    return await self.decision_of(approval)
            await asyncio.sleep(_pause(pace, approval, ends))
            if (_seconds_to(approval.expires_at) or 1.0) <= 0:
                etag = None

    async def cancel(self, action_id: str, reason: str = "") -> Approval:
        return Approval.from_json(_core.json_object(await self._send(_Calls.cancel(action_id, reason))))

    async def save_checkpoint(self, action_id: str, name: str, data: dict[str, Any], *,
                              checkpoint_type: str = "state", correlation_id: str | None = None,
                              run_id: str | None = None, expires_in_hours: float | None = None,
                              idempotency_key: str | None = None) -> Checkpoint:
        call = _Calls.save_checkpoint(
            action_id, name, data, checkpoint_type=checkpoint_type, correlation_id=correlation_id, run_id=run_id,
            expires_in_hours=expires_in_hours, idempotency_key=idempotency_key,
        )
        return Checkpoint.from_json(_core.json_object(await self._send(call)))

    async def latest_checkpoint(self, action_id: str, name: str | None = None) -> Checkpoint | None:
        try:
            answer = await self._send(_Calls.latest_checkpoint(action_id, name))
        except NotFound:
            return None
        return Checkpoint.from_json(_core.json_object(answer))

    async def resume_checkpoint(self, action_id: str, checkpoint_id: str) -> Resumed:
        body = _core.json_object(await self._send(_Calls.resume_checkpoint(action_id, checkpoint_id)))
        return Resumed(checkpoint_id=str(body.get("checkpoint_id")), resumed_by=body.get("resumed_by"))
