from oauth2_provider.oauth2_validators import OAuth2Validator


class GroupsValidator(OAuth2Validator):
    """Puts the user's name, e-mail and groups in the ID token and UserInfo, as Keycloak or Okta can."""

    oidc_claim_scope = None  # every claim below, whatever scopes were asked

    def get_additional_claims(self, request):
        user = request.user
        return {
            "preferred_username": user.username,
            "email": user.email,
            "groups": sorted(user.groups.values_list("name", flat=True)),
        }
