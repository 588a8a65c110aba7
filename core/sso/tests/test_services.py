import pytest
from django.contrib.auth import get_user_model

from core.roles import user_role
from core.sso.models import SsoIdentity
from core.sso.services import SsoRefused, sso_user_sign_in

ISSUER = "https://login.example.com"


def sign_in(role, sub="sub-1", **claims):
    claims = {"sub": sub, "preferred_username": "olivia", "email": "olivia@example.com", **claims}
    return sso_user_sign_in(issuer=ISSUER, claims=claims, role=role, groups=["oncall"])


@pytest.mark.django_db
def test_first_sign_in_makes_a_user_without_a_password_and_with_the_role():
    user = sign_in("responder")
    assert user.username == "olivia"
    assert user.email == "olivia@example.com"
    assert not user.has_usable_password()
    assert user_role(get_user_model().objects.get(pk=user.pk)) == "responder"
    assert SsoIdentity.objects.get(issuer=ISSUER, subject="sub-1").user == user


@pytest.mark.django_db
def test_every_sign_in_reapplies_the_role_so_leaving_on_call_drops_responder():
    first = sign_in("responder")
    again = sign_in("viewer")
    assert again.pk == first.pk
    assert list(again.groups.values_list("name", flat=True)) == ["viewer"]


@pytest.mark.django_db
def test_the_user_is_found_by_subject_even_when_the_provider_renames_them():
    first = sign_in("viewer")
    assert sign_in("viewer", preferred_username="olivia.k").pk == first.pk


@pytest.mark.django_db
def test_without_preferred_username_the_email_names_the_user():
    user = sign_in("viewer", sub="sub-2", preferred_username=None, email="kai@example.com")
    assert user.username == "kai@example.com"


@pytest.mark.django_db
def test_a_provider_account_cannot_take_over_a_local_account_of_the_same_name(make_user):
    local = make_user("admin", username="olivia")
    with pytest.raises(SsoRefused, match="local account named 'olivia'"):
        sign_in("admin")
    assert not SsoIdentity.objects.exists()
    local.refresh_from_db()
    assert local.has_usable_password()
    assert get_user_model().objects.filter(username__iexact="olivia").count() == 1


@pytest.mark.django_db
def test_a_deactivated_user_is_refused():
    user = sign_in("responder")
    user.is_active = False
    user.save()
    with pytest.raises(SsoRefused, match="deactivated"):
        sign_in("responder")


@pytest.mark.django_db
@pytest.mark.parametrize("claims", [{"sub": ""}, {"preferred_username": "has space", "email": None}])
def test_claims_without_a_subject_or_a_usable_name_are_refused_and_nothing_is_written(claims):
    with pytest.raises(SsoRefused):
        sign_in("viewer", **claims)
    assert not get_user_model().objects.exists()
    assert not SsoIdentity.objects.exists()
