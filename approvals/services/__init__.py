"""Writes of the approval workflow (SPEC §3), one module per family of transitions:

- `requests`: opening a request (a round), amending an open one, and adopting an action
  the engine set to PENDING_APPROVAL by itself.
- `decisions`: approve, reject, quarantine, the votes of a level that needs several
  people, an approver's edit of the inputs, and a batch of decisions.
- `claims`: a reviewer's claim on an open request: take, take over, renew, release.
- `cancel`: the engine withdraws an action.
- `expiry`: the sweep expires overdue requests.
- `events`: what every transition tells others, in its transaction: the action's
  mirrored fields (what the engine reads), the audit row, the outbox row; once
  committed, the log line and the metrics.
- `locks`: every row lock of the workflow, and the one order they are taken in.

Each public service is keyword-only and runs in its own transaction. Callers import from
the family module, e.g. `from approvals.services.decisions import approval_decide`.
"""
