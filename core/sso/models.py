from django.conf import settings
from django.db import models


class SsoIdentity(models.Model):
    """A person at the provider (issuer + subject, which never change) bound to one local user.

    The user is found by this link, never by a user name or e-mail the provider sends, so a provider
    account cannot take over a local (break-glass) account that happens to share its name.
    """

    issuer = models.CharField(max_length=500)
    subject = models.CharField(max_length=255)
    user = models.ForeignKey(settings.AUTH_USER_MODEL, on_delete=models.CASCADE, related_name="sso_identities")
    created_at = models.DateTimeField()
    last_login_at = models.DateTimeField()
    last_groups = models.JSONField(default=list, blank=True)

    class Meta:
        constraints = [models.UniqueConstraint(fields=["issuer", "subject"], name="sso_identity_unique_subject")]

    def __str__(self) -> str:
        return f"{self.subject} at {self.issuer}"
