import pytest
from django.core.checks import run_checks

from core.sso.backends import claim_groups
from core.sso.config import RoleGroupsError, role_for_groups, role_groups_parse, sso_config

mapping = role_groups_parse("admin=firebreak-admins,responder=oncall,responder=sre,viewer=*")


def test_role_groups_are_role_equals_group_pairs_and_a_role_may_repeat():
    assert mapping == {
        "admin": frozenset({"firebreak-admins"}),
        "responder": frozenset({"oncall", "sre"}),
        "viewer": frozenset({"*"}),
    }


@pytest.mark.parametrize(
    ("text", "says"),
    [("admin", "is not role=group"), ("admin=", "is not role=group"), ("owner=root", "unknown role 'owner'")],
)
def test_a_malformed_mapping_is_refused_with_the_reason(text, says):
    with pytest.raises(RoleGroupsError, match=says):
        role_groups_parse(text)


def test_a_malformed_mapping_stops_start_up_through_the_system_check(settings):
    settings.FIREBREAK_OIDC_ROLE_GROUPS = "boss=everyone"
    errors = [message for message in run_checks() if message.id == "sso.E001"]
    assert errors and "unknown role 'boss'" in errors[0].msg


def test_the_highest_matching_role_wins():
    assert role_for_groups(mapping, {"oncall", "firebreak-admins"}) == "admin"
    assert role_for_groups(mapping, {"sre", "staff"}) == "responder"


def test_star_lets_anyone_in_as_that_role_and_without_it_no_group_means_no_entry():
    assert role_for_groups(mapping, set()) == "viewer"
    strict = role_groups_parse("responder=oncall")
    assert role_for_groups(strict, {"staff"}) is None
    assert role_for_groups(strict, {"Oncall"}) is None  # compared exactly as the claim carries them


def test_groups_come_from_a_list_a_single_name_or_a_dotted_path():
    assert claim_groups({"groups": ["a", "b", 3]}, "groups") == ["a", "b"]
    assert claim_groups({"groups": "a"}, "groups") == ["a"]
    assert claim_groups({"realm_access": {"roles": ["oncall"]}}, "realm_access.roles") == ["oncall"]
    assert claim_groups({}, "groups") == []


def test_sso_is_off_without_an_issuer_and_a_client(settings):
    settings.FIREBREAK_OIDC_ISSUER = ""
    settings.FIREBREAK_OIDC_CLIENT_ID = "firebreak"
    assert sso_config() is None
    settings.FIREBREAK_OIDC_ISSUER = "https://login.example.com/realms/ops/"
    config = sso_config()
    assert config is not None
    assert config.issuer == "https://login.example.com/realms/ops"
    assert config.provider_name == "login.example.com"
    assert config.groups_claim == "groups"


def test_sso_on_with_no_mapping_warns_that_it_lets_nobody_in(settings):
    settings.FIREBREAK_OIDC_ISSUER = "https://login.example.com"
    settings.FIREBREAK_OIDC_ROLE_GROUPS = ""
    assert any(message.id == "sso.W001" for message in run_checks())
