"""The detector contract shared by every detector module."""

import hashlib
from collections.abc import Callable
from dataclasses import dataclass, field


class Rule:
    NOTIFY = "notify"
    PAUSE = "pause"
    DECLARE = "declare"


@dataclass(frozen=True)
class Finding:
    """What a detector saw. ``key`` makes the fingerprint: the same key is the same alert."""

    detector: str
    agent_id: int
    key: str
    title: str
    trace_id: int | None = None  # Trace.pk
    span_id: str = ""
    severity: str = "SEV2"
    failure_class: str = ""  # FailureClass slug
    details: dict = field(default_factory=dict)

    @property
    def fingerprint(self) -> str:
        return hashlib.sha256(f"{self.detector}\x00{self.agent_id}\x00{self.key}".encode()).hexdigest()[:64]


@dataclass(frozen=True)
class Detector:
    name: str
    kind: str  # "streaming" | "scheduled"
    run: Callable  # streaming: run(*, traces, settings) -> list[Finding]; scheduled: run(*, agent, settings, now)
    defaults: dict  # threshold name -> default value
    rule: str = Rule.NOTIFY
    failure_class: str = ""
    description: str = ""


registry: dict[str, Detector] = {}


def detector(*, name: str, kind: str, defaults: dict, rule: str = Rule.NOTIFY, failure_class: str = "",
             description: str = ""):  # fmt: skip
    """Register a detector function under ``name``."""

    def register(fn):
        registry[name] = Detector(name, kind, fn, dict(defaults), rule, failure_class, description or fn.__doc__ or "")
        return fn

    return register


def threshold(settings: dict, name: str):
    return settings[name]
