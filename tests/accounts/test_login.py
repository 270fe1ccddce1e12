import pytest
from django.urls import reverse

from tests.conftest import PASSWORD

pytestmark = pytest.mark.django_db


def test_login_page_renders_for_anonymous(client):
    response = client.get(reverse("login"))
    assert response.status_code == 200
    assert b"Sign in" in response.content
    assert b"csrfmiddlewaretoken" in response.content


def test_pages_redirect_anonymous_to_login(client):
    response = client.get(reverse("home"))
    assert response.status_code == 302
    assert response["Location"].startswith(reverse("login"))


def test_wrong_password_shows_the_form_error_not_a_500(client, make_reviewer):
    make_reviewer("operator", "olu@example.com")
    response = client.post(reverse("login"), {"username": "olu@example.com", "password": "wrong"})
    assert response.status_code == 200
    page = response.content.decode()
    assert "Wrong e-mail or password" in page  # the field is labelled e-mail, not username
    assert 'for="id_username">E-mail<' in page
    assert "username" not in page.split('role="alert"')[1].split("</div>")[0]
    assert "_auth_user_id" not in client.session


def test_an_unknown_e_mail_gets_the_same_message_as_a_wrong_password(client):
    response = client.post(reverse("login"), {"username": "nobody@example.com", "password": "wrong"})
    assert response.status_code == 200
    assert "Wrong e-mail or password" in response.content.decode()


def test_sign_in_by_email_in_any_case_lands_on_home_with_role(client, make_reviewer):
    make_reviewer("viewer", "vic@example.com")
    response = client.post(reverse("login"), {"username": "  Vic@Example.com", "password": PASSWORD}, follow=True)
    assert response.status_code == 200
    assert response.redirect_chain[-1][0] == reverse("home")
    assert b"viewer" in response.content


def test_service_accounts_can_not_sign_in_to_pages(client, service_token):
    response = client.post(reverse("login"), {"username": "action-engine", "password": ""})
    assert "_auth_user_id" not in client.session
    assert response.status_code == 200


def test_sign_out_needs_post_and_ends_the_session(client, make_reviewer):
    user = make_reviewer("operator")
    client.force_login(user)
    assert client.get(reverse("logout")).status_code == 405
    client.post(reverse("logout"))
    assert client.get(reverse("home")).status_code == 302


def test_health_is_open_and_says_ok(client):
    response = client.get(reverse("health"))
    assert response.status_code == 200
    assert response.json() == {"status": "ok"}
