from io import StringIO

import pytest
from django.contrib.auth import get_user_model
from django.core.management import CommandError, call_command

from zakops.models import Operator

pytestmark = pytest.mark.django_db
SCHEMA = "/api/hitl/schema/"


def run(*args) -> list[str]:
    out = StringIO()
    call_command(*args, stdout=out)
    return out.getvalue().strip().splitlines()


def test_create_operator_makes_a_person_with_role_and_operators_row():
    run("create_operator", "Ana@Example.com", "--role", "operator", "--password", "s3cret-pass-123")
    user = get_user_model().objects.get(username="ana@example.com")
    assert list(user.groups.values_list("name", flat=True)) == ["operator"]
    assert user.check_password("s3cret-pass-123")
    assert not user.is_staff
    operator = Operator.objects.get(email="ana@example.com")
    assert operator.role == "operator"
    assert user.account.actor_id == operator.id


def test_create_operator_again_changes_role_everywhere_and_keeps_the_uuid():
    run("create_operator", "ana@example.com", "--role", "operator")
    first_id = Operator.objects.get(email="ana@example.com").id
    run("create_operator", "ana@example.com", "--role", "admin")
    user = get_user_model().objects.get(username="ana@example.com")
    assert list(user.groups.values_list("name", flat=True)) == ["admin"]
    assert user.is_staff and user.is_superuser
    operator = Operator.objects.get(email="ana@example.com")
    assert (operator.role, operator.id) == ("admin", first_id)
    assert Operator.objects.count() == 1


def test_create_operator_keeps_an_existing_operators_row():
    existing = Operator.objects.create(email="old@example.com", name="Old Hand", role="viewer")
    run("create_operator", "old@example.com", "--role", "operator")
    assert get_user_model().objects.get(username="old@example.com").account.actor_id == existing.id


def test_create_operator_token_is_the_last_line_and_authenticates(api):
    token = run("create_operator", "tok@example.com", "--role", "viewer", "--token")[-1]
    api.credentials(HTTP_AUTHORIZATION=f"Bearer {token}")
    assert api.get(SCHEMA).status_code == 200


def test_create_operator_refuses_a_bad_email():
    with pytest.raises(CommandError, match="valid email"):
        run("create_operator", "not-an-email", "--role", "viewer")


def test_create_operator_refuses_an_unknown_role():
    with pytest.raises(CommandError):
        run("create_operator", "x@example.com", "--role", "superhero")


def test_create_service_token_prints_a_working_token_each_time(api):
    first = run("create_service_token", "ci")[-1]
    second = run("create_service_token", "ci")[-1]
    assert first != second
    assert get_user_model().objects.filter(username="ci").count() == 1
    for token in (first, second):
        api.credentials(HTTP_AUTHORIZATION=f"Bearer {token}")
        assert api.get(SCHEMA).status_code == 200


def test_create_service_token_refuses_a_persons_name_and_bad_names():
    run("create_operator", "ana@example.com", "--role", "viewer")
    with pytest.raises(CommandError):
        run("create_service_token", "ana@example.com")
    with pytest.raises(CommandError):
        run("create_service_token", "Bad Name!")


def test_a_new_email_moves_the_persons_operators_row_with_them():
    from accounts.services import operator_sync

    run("create_operator", "old@example.com", "--role", "operator")
    user = get_user_model().objects.get(username="old@example.com")
    operator_id = user.account.actor_id
    user.email = "new@example.com"
    user.save(update_fields=["email"])
    operator_sync(user=user)
    assert Operator.objects.count() == 1
    assert Operator.objects.get(pk=operator_id).email == "new@example.com"
    user.refresh_from_db()
    assert user.account.actor_id == operator_id
