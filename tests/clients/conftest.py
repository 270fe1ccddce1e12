import pytest

from accounts.selectors import actor_of
from accounts.services import api_token_create, operator_upsert, service_account_ensure
from tests.conftest import PASSWORD


@pytest.fixture
def engine_token(transactional_db) -> str:
    return api_token_create(user=service_account_ensure(name="action-engine"), name="client tests")[1]


@pytest.fixture
def admins(transactional_db):
    """Two admins and an operator, as Actors (the reviewers who decide)."""
    return {
        email.split("@")[0]: actor_of(operator_upsert(email=email, role=role, password=PASSWORD, name=email))
        for email, role in (("ada@example.com", "admin"), ("abe@example.com", "admin"), ("olu@example.com", "operator"))
    }


@pytest.fixture
def hitl(live_server, engine_token):
    from zakops_hitl_client import HitlClient

    with HitlClient(live_server.url, engine_token, timeout=30) as client:
        yield client
