"""A real OpenID provider for the SSO tests: django-oauth-toolkit's, in a small Django project of its own.

``serve.py`` runs it as its own process on a free loopback port (see ``OidcProvider.start``).
"""
