"""The detector contract shared by every detector module."""

import hashlib
import inspect
from collections.abc import Callable, Mapping
from dataclasses import dataclass, field
from typing import Any, TypeVar

# Threshold name -> value: a detector's defaults overlaid with the saved DetectorSetting rows.
Thresholds = dict[str, float]


class Rule:
    NOTIFY = "notify"
    PAGE = "page"  # notify + page on-call through PagerDuty (incidents.integrations.pagerduty)
    PAUSE = "pause"
    DECLARE = "declare"
    DEGRADE = "degrade"  # step the agent one level down its fallback ladder (issue 15)


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
    details: dict[str, Any] = field(default_factory=dict)

    @property
    def fingerprint(self) -> str:
        return hashlib.sha256(f"{self.detector}\x00{self.agent_id}\x00{self.key}".encode()).hexdigest()[:64]


@dataclass(frozen=True)
class Detector:
    name: str
    kind: str  # "streaming" | "scheduled"
    # streaming: run(*, traces: list[Trace], settings: Thresholds); scheduled: run(*, agent, settings, now)
    run: Callable[..., list[Finding]]
    defaults: Thresholds  # threshold name -> default value
    rule: str = Rule.NOTIFY
    failure_class: str = ""
    description: str = ""


registry: dict[str, Detector] = {}

DetectorFn = TypeVar("DetectorFn", bound=Callable[..., list[Finding]])


def detector(*, name: str, kind: str, defaults: Mapping[str, float], rule: str = Rule.NOTIFY,
             failure_class: str = "", description: str = "") -> Callable[[DetectorFn], DetectorFn]:  # fmt: skip
    """Register a detector function under ``name``."""

    def register(fn: DetectorFn) -> DetectorFn:
        registry[name] = Detector(
            name, kind, fn, dict(defaults), rule, failure_class, description or inspect.cleandoc(fn.__doc__ or "")
        )
        return fn

    return register


def threshold(settings: Thresholds, name: str) -> float:
    return settings[name]
