"""Who does a write: one type for a person, an agent's key and Firebreak itself.

Every service that writes takes ``actor: Actor``. The label is what audit rows
and timelines show; ``user`` is the person, when a person acts (it is what
foreign keys point at). Views build one with ``Actor.from_request``; detectors,
the CLI and the demo build theirs with ``Actor.system`` / ``Actor.detector``.
"""

from __future__ import annotations

from dataclasses import dataclass
from typing import Any

from django.core.exceptions import PermissionDenied

from core.roles import has_role

DETECTOR_PREFIX = "detector:"
LABEL_MAX = 150


@dataclass(frozen=True, slots=True)
class Actor:
    """``label`` names the actor everywhere; ``user`` is set only for a person.

    ``automated``: Firebreak itself acting on its own rules (a detector, beat, the
    demo, an operator at the server's terminal), which roles do not limit.
    ``agent``: the slug when an agent's own key acts, which no role ever covers.
    """

    label: str
    user: Any = None
    automated: bool = False
    agent: str | None = None

    @classmethod
    def person(cls, user: Any) -> Actor:
        return cls(label=user.get_username()[:LABEL_MAX], user=user)

    @classmethod
    def system(cls, label: str = "system") -> Actor:
        return cls(label=label[:LABEL_MAX], automated=True)

    @classmethod
    def detector(cls, name: str) -> Actor:
        return cls.system(f"{DETECTOR_PREFIX}{name}")

    @classmethod
    def agent_key(cls, slug: str) -> Actor:
        return cls(label=f"agent:{slug}"[:LABEL_MAX], agent=slug)

    @classmethod
    def from_request(cls, request: Any) -> Actor:
        """The actor of a Django or DRF request: its person, its agent key, or "anonymous"."""
        user = getattr(request, "user", None)
        as_actor = getattr(user, "as_actor", None)
        if callable(as_actor):  # an agent key's principal knows its own actor
            actor: Actor = as_actor()
            return actor
        if user is not None and getattr(user, "is_authenticated", False):
            return cls.person(user)
        return cls(label="anonymous")

    @property
    def is_person(self) -> bool:
        return self.user is not None

    @property
    def is_detector(self) -> bool:
        return self.automated and self.label.startswith(DETECTOR_PREFIX)

    def can(self, role: str) -> bool:
        """True when this actor may act with ``role``: a person holding it, or Firebreak itself."""
        if self.agent is not None:
            return False
        return self.automated or (self.user is not None and has_role(self.user, role))

    def require(self, role: str) -> None:
        """Raise PermissionDenied unless ``can(role)``."""
        if self.agent is not None:
            raise PermissionDenied("an agent's key cannot do this")
        if not self.can(role):
            raise PermissionDenied(f"This needs the {role} role.")

    def __str__(self) -> str:
        return self.label
