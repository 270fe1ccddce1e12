import itertools

import pytest

from accounts.selectors import actor_of
from approvals.services.requests import approval_request

# Action types whose default-rule assessment gives each level, with approval required.
TYPE_FOR_LEVEL = {
    "medium": ("COMMUNICATION.DRAFT_EMAIL", {}),
    "high": ("DOCUMENT.GENERATE_LOI", {}),
    "critical": ("COMMUNICATION.SEND_EMAIL", {"to": "cfo@seller.example"}),
}
_ids = itertools.count(1)


@pytest.fixture
def engine(db):
    from accounts.services import service_account_ensure

    return actor_of(service_account_ensure(name="action-engine"))


@pytest.fixture
def request_approval(engine):
    """request_approval("critical", requested_by="ana@example.com") -> an open request."""

    def make(level="medium", *, requested_by="", deal_id=None, action_id=None):
        action_type, inputs = TYPE_FOR_LEVEL[level]
        request, created = approval_request(
            action_id=action_id or f"ACT-T{next(_ids):05d}",
            action_type=action_type,
            inputs=inputs,
            requester=engine,
            requested_by=requested_by,
            deal_id=deal_id,
            title=f"A {level} action",
        )
        assert created and request.risk_level == level and request.state == "pending"
        return request

    return make


@pytest.fixture
def people(make_reviewer):
    """An admin, two operators and a viewer, as Actors."""
    return {
        "admin": actor_of(make_reviewer("admin", "ada@example.com")),
        "admin2": actor_of(make_reviewer("admin", "abe@example.com")),
        "operator": actor_of(make_reviewer("operator", "olu@example.com")),
        "operator2": actor_of(make_reviewer("operator", "oona@example.com")),
        "viewer": actor_of(make_reviewer("viewer", "vic@example.com")),
    }
