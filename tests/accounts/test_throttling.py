"""Password guessing is stopped (django-axes): after HITL_LOGIN_FAILURE_LIMIT failures for
one account from one client, that client is refused for that account for a while, also
with the right password, with a message and Retry-After; the account from every client
and one client for every account have higher limits, so a guesser is stopped without
anyone who knows a reviewer's e-mail locking them out; an admin unlocks in admin; API
tokens never count."""

import re

import pytest
from axes.models import AccessAttempt
from django.conf import settings
from django.test import Client
from django.urls import reverse

from tests.conftest import PASSWORD

pytestmark = pytest.mark.django_db
LIMIT = settings.AXES_FAILURE_LIMIT
LIMITS = {str(parameters): limit for parameters, limit in settings.HITL_LOGIN_LIMITS}
ACCOUNT_LIMIT = LIMITS["username"]
CLIENT_LIMIT = LIMITS["ip_address"]


def sign_in(client, username, password, address="10.0.0.1"):
    return client.post(reverse("login"), {"username": username, "password": password}, REMOTE_ADDR=address)


def signed_in(client) -> bool:
    return "_auth_user_id" in client.session


def assert_refused(response):
    assert response.status_code == 429
    assert response["Retry-After"] == str(int(settings.AXES_COOLOFF_TIME.total_seconds()))
    text = response.content.decode()
    assert "Too many failed sign-ins" in text
    assert f"sign-in is refused for {settings.AXES_COOLOFF_TIME.seconds // 60} minutes, even with the right password" in text


def test_the_limit_is_a_few_failures_for_a_while():
    assert 3 <= LIMIT <= 10
    assert settings.AXES_COOLOFF_TIME.total_seconds() >= 300
    # High enough that a reviewer's colleagues mistyping do not lock them, low enough that
    # a guesser gets a few hundred tries an hour at most.
    assert LIMIT < CLIENT_LIMIT <= 50 and LIMIT < ACCOUNT_LIMIT <= 100


def test_failures_for_one_account_lock_that_client_even_for_the_right_password(client, make_reviewer):
    make_reviewer("operator", "olu@example.com")
    for attempt in range(LIMIT - 1):
        response = sign_in(client, "olu@example.com", f"guess {attempt}")
        assert response.status_code == 200 and b"Wrong e-mail or password" in response.content
    assert_refused(sign_in(client, "olu@example.com", "one guess too many"))
    assert_refused(sign_in(client, "olu@example.com", PASSWORD))
    assert not signed_in(client)
    # The guesser does not lock the reviewer out: from their own address they sign in.
    own = Client()
    response = sign_in(own, "olu@example.com", PASSWORD, address="192.0.2.7")
    assert response.status_code == 302 and signed_in(own)
    # ...and that success does not clear the guesser's count.
    assert_refused(sign_in(client, "olu@example.com", PASSWORD))


def test_a_guesser_spread_over_many_addresses_is_still_stopped(make_reviewer):
    make_reviewer("operator", "olu@example.com")
    for attempt in range(ACCOUNT_LIMIT):
        sign_in(Client(), "olu@example.com", f"guess {attempt}", address=f"10.{attempt // 4}.0.{attempt % 4 + 1}")
    # No address went past the per-client limit, but the account as a whole did.
    assert_refused(sign_in(Client(), "olu@example.com", PASSWORD, address="192.0.2.99"))


def test_the_account_is_counted_whatever_the_case_and_spaces_of_the_email(client, make_reviewer):
    make_reviewer("operator", "olu@example.com")
    spellings = ["OLU@example.com", " olu@Example.com", "olu@example.COM ", "Olu@Example.Com"]
    for attempt in range(LIMIT):
        sign_in(client, spellings[attempt % len(spellings)], "wrong", address="10.0.1.1")
    assert_refused(sign_in(Client(), "olu@example.com", PASSWORD, address="10.0.1.1"))


def test_failures_from_one_address_lock_it_for_every_account(client, make_reviewer):
    make_reviewer("viewer", "vic@example.com")
    for attempt in range(CLIENT_LIMIT - 1):
        sign_in(client, f"nobody{attempt}@example.com", "wrong", address="10.9.9.9")
    # A few colleagues mistyping behind one address lock nobody out...
    assert sign_in(Client(), "vic@example.com", PASSWORD, address="10.9.9.9").status_code == 302
    # ...one address spraying guesses over many accounts is stopped.
    for attempt in range(CLIENT_LIMIT):
        sign_in(client, f"nobody{attempt}@example.com", "wrong", address="10.9.9.9")
    assert_refused(sign_in(client, "vic@example.com", PASSWORD, address="10.9.9.9"))
    assert not signed_in(client)
    elsewhere = Client()
    response = sign_in(elsewhere, "vic@example.com", PASSWORD, address="10.9.9.10")
    assert response.status_code == 302 and signed_in(elsewhere)


def test_a_success_before_the_limit_starts_the_count_again(client, make_reviewer):
    make_reviewer("operator", "olu@example.com")
    for _ in range(LIMIT - 1):
        sign_in(client, "olu@example.com", "wrong")
    assert sign_in(client, "olu@example.com", PASSWORD).status_code == 302
    client.post(reverse("logout"))
    for _ in range(LIMIT - 1):
        sign_in(client, "olu@example.com", "wrong")
    assert sign_in(client, "olu@example.com", PASSWORD).status_code == 302


def test_the_refusal_page_has_no_inline_script_or_style(client, make_reviewer):
    make_reviewer("operator", "olu@example.com")
    for _ in range(LIMIT):
        sign_in(client, "olu@example.com", "wrong")
    response = sign_in(client, "olu@example.com", PASSWORD)
    assert response.status_code == 429
    page = response.content.decode()
    assert "script-src 'self'" in response["Content-Security-Policy"]
    assert not re.search(r"<script(?![^>]*\ssrc=)", page)
    assert "<style" not in page and " style=" not in page


def test_an_admin_unlocks_in_admin(client, make_reviewer):
    make_reviewer("operator", "olu@example.com")
    for _ in range(LIMIT):
        sign_in(client, "olu@example.com", "wrong")
    assert_refused(sign_in(client, "olu@example.com", PASSWORD))

    admin = Client()
    admin.force_login(make_reviewer("admin", "ada@example.com"))
    listing = admin.get("/admin/axes/accessattempt/")
    assert listing.status_code == 200 and b"olu@example.com" in listing.content
    attempts = list(AccessAttempt.objects.values_list("pk", flat=True))
    response = admin.post(
        "/admin/axes/accessattempt/", {"action": "delete_selected", "_selected_action": attempts, "post": "yes"}
    )
    assert response.status_code == 302
    assert not AccessAttempt.objects.exists()

    response = sign_in(client, "olu@example.com", PASSWORD)
    assert response.status_code == 302 and signed_in(client)


def test_the_admin_sign_in_page_is_throttled_too(make_reviewer):
    make_reviewer("admin", "ada@example.com")
    client = Client()
    for _ in range(LIMIT):
        client.post("/admin/login/", {"username": "ada@example.com", "password": "wrong"}, REMOTE_ADDR="10.3.3.3")
    response = client.post("/admin/login/", {"username": "ada@example.com", "password": PASSWORD}, REMOTE_ADDR="10.3.3.3")
    assert response.status_code == 429
    assert not signed_in(client)


def test_api_tokens_are_not_affected(client, make_reviewer, service_token):
    """A locked address still reaches the API with a token: tokens are not passwords and
    never go through sign-in."""
    for attempt in range(CLIENT_LIMIT + 2):
        sign_in(client, f"guess{attempt}@example.com", "wrong", address="10.4.4.4")
    assert_refused(sign_in(client, "someone@example.com", "x", address="10.4.4.4"))
    api = Client(HTTP_AUTHORIZATION=f"Bearer {service_token}", REMOTE_ADDR="10.4.4.4")
    assert api.get("/api/hitl/approval-queue").status_code == 200
    assert api.post("/api/hitl/assess-risk", {"action_type": "DEAL.GET_DETAILS"}, content_type="application/json").status_code == 200
    # Wrong tokens are a 401 each, and do not lock the address either.
    for _ in range(LIMIT + 2):
        assert Client(HTTP_AUTHORIZATION="Bearer wrong", REMOTE_ADDR="10.5.5.5").get("/api/hitl/approval-queue").status_code == 401
    operator = make_reviewer("operator", "olu@example.com")
    assert sign_in(Client(), operator.email, PASSWORD, address="10.5.5.5").status_code == 302


def test_behind_a_proxy_the_forwarded_address_is_counted(client, make_reviewer, settings):
    settings.HITL_PROXY_COUNT = 1
    make_reviewer("viewer", "vic@example.com")
    for attempt in range(CLIENT_LIMIT):
        client.post(
            reverse("login"), {"username": f"n{attempt}@example.com", "password": "wrong"},
            REMOTE_ADDR="10.0.0.100", HTTP_X_FORWARDED_FOR="198.51.100.1",
        )
    # Another client behind the same proxy is not locked out with the guesser.
    fine = Client()
    response = fine.post(
        reverse("login"), {"username": "vic@example.com", "password": PASSWORD},
        REMOTE_ADDR="10.0.0.100", HTTP_X_FORWARDED_FOR="203.0.113.5",
    )
    assert response.status_code == 302 and signed_in(fine)
    refused = client.post(
        reverse("login"), {"username": "vic@example.com", "password": PASSWORD},
        REMOTE_ADDR="10.0.0.100", HTTP_X_FORWARDED_FOR="198.51.100.1",
    )
    assert refused.status_code == 429
