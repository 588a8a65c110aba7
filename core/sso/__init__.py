"""Single sign-on with OpenID Connect (mozilla-django-oidc), the provider's groups mapped onto core.roles.

A Django app of its own (label ``sso``) inside core: it owns the link between a provider's subject and a
local user, and imports no app above core.
"""
