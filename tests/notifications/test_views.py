"""The profile page: each person switches kinds of notification off (and on again);
the choice lives in zakops.operators.preferences and is honoured."""

import re

import pytest
from django.contrib.auth import get_user_model
from django.test import Client

from notifications.models import Notification
from tests.conftest import PASSWORD
from zakops.models import Operator

pytestmark = pytest.mark.django_db


def signed_in(user, **kwargs) -> Client:
    client = Client(**kwargs)
    client.force_login(user)
    return client


def checkboxes(html: str) -> dict[str, bool]:
    return {
        name: "checked" in tag
        for tag, name in re.findall(r'(<input type="checkbox" name="(\w+)"[^>]*>)', html)
    }


def test_the_top_bar_links_the_profile_page_which_lists_what_an_operator_can_be_sent(make_reviewer):
    client = signed_in(make_reviewer("operator", "olu@example.com"))
    assert 'href="/profile/"' in client.get("/").content.decode()
    html = client.get("/profile/").content.decode()
    assert checkboxes(html) == {"requested": True, "reminder": True}  # quarantines and expiries are the admins'
    assert "olu@example.com" in html
    assert not re.search(r"<script(?![^>]*\ssrc=)", html) and " style=" not in html  # CSP: nothing inline


def test_saving_opt_outs_keeps_other_preferences_and_they_are_honoured(people, request_approval, email_channel):
    olu = get_user_model().objects.get(email="olu@example.com")
    Operator.objects.filter(email="olu@example.com").update(preferences={"theme": "dark", "notifications": {"expired": True}})
    client = signed_in(olu)
    response = client.post("/profile/", {"reminder": "on"}, follow=True)
    assert "Saved: you will be sent only what is ticked." in response.content.decode()
    assert Operator.objects.get(email="olu@example.com").preferences == {
        "theme": "dark", "notifications": {"expired": True, "requested": False, "reminder": True},
    }
    assert checkboxes(client.get("/profile/").content.decode()) == {"requested": False, "reminder": True}

    request_approval("medium")
    assert sorted(Notification.objects.values_list("recipient", flat=True)) == [
        "abe@example.com", "ada@example.com", "oona@example.com",
    ]

    client.post("/profile/", {"reminder": "on", "requested": "on"})
    request_approval("medium")
    assert Notification.objects.filter(recipient="olu@example.com").count() == 1


def test_an_admin_chooses_among_all_four(make_reviewer):
    client = signed_in(make_reviewer("admin", "ada@example.com"))
    client.post("/profile/", {"requested": "on", "quarantined": "on"})
    assert checkboxes(client.get("/profile/").content.decode()) == {
        "requested": True, "reminder": False, "quarantined": True, "expired": False,
    }


def test_a_post_without_the_csrf_token_is_refused(make_reviewer):
    olu = make_reviewer("operator", "olu@example.com")
    client = Client(enforce_csrf_checks=True)
    client.force_login(olu)
    response = client.post("/profile/", {"reminder": "on"})
    assert response.status_code == 403
    assert Operator.objects.get(email=olu.email).preferences is None

    token = client.get("/profile/").context["csrf_token"]
    assert client.post("/profile/", {"reminder": "on", "csrfmiddlewaretoken": str(token)}).status_code == 302
    assert Operator.objects.get(email=olu.email).preferences == {"notifications": {"requested": False, "reminder": True}}


def test_viewers_and_accounts_without_an_operator_record_have_nothing_to_choose(make_reviewer):
    html = signed_in(make_reviewer("viewer")).get("/profile/").content.decode()
    assert "Viewers are sent no notifications" in html and checkboxes(html) == {}
    root = get_user_model().objects.create_superuser("root", "root@example.com", PASSWORD)
    client = signed_in(root)
    assert "no ZakOps operator record" in client.get("/profile/").content.decode()
    assert client.post("/profile/", {"requested": "on"}).status_code == 200


def test_the_profile_page_needs_a_signed_in_person(client):
    response = client.get("/profile/")
    assert response.status_code == 302 and response["Location"].startswith("/login/")
