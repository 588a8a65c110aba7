"""Gate documents: where the server keeps them, what they hold, and how an agent tells a real one.

The server signs every document with Ed25519 over its canonical JSON (sorted keys, no spaces,
ASCII) without ``signature``; ``issued_at`` (milliseconds, server clock) is inside what is signed.
The agent verifies with the public key it was given at set-up (``FIREBREAK_GATE_PUBLIC_KEY``, which
``manage.py createapikey --agent`` prints) and refuses anything unsigned, forged, or issued longer
ago than its window. Documents are ordered by ``(epoch, version)``: the epoch moves forward when the
server finds its database behind what it published (a restore), so the restored state still wins.
"""

from __future__ import annotations

import base64
import binascii
import json
import math
import time
from datetime import datetime
from typing import Any

from cryptography.exceptions import InvalidSignature
from cryptography.hazmat.primitives.asymmetric.ed25519 import Ed25519PublicKey

# Where the server keeps and publishes the gate (agents/gate.py), and the document's fields.
# tests/sdk/test_contract.py fails when one side changes without the other.
GATE_KEY = "firebreak:gate:{slug}"  # Redis: the agent's gate document (JSON)
GATE_CHANNEL = "firebreak:gate-events:{slug}"  # Redis pub/sub: every new document
GATE_PATH = "/api/v1/agents/{slug}/gate"  # HTTP, under the Firebreak URL
GATE_STREAM_PATH = "/api/v1/agents/{slug}/gate/stream"  # HTTP Server-Sent Events: the push path
STATES = frozenset({"active", "paused", "killed"})
BUDGET_CAPS = ("session_cost_cap", "daily_cost_cap", "session_token_cap", "session_step_cap")
BUDGET_FIELDS = ("frozen", "frozen_at", *BUDGET_CAPS)
BLOCK_KINDS = ("session", "user", "tenant")  # "blocked" holds "sessions", "users", "tenants"
PINNED_FIELDS = ("prompt_version", "model_version")
DOCUMENT_FIELDS = frozenset(
    {
        "agent",
        "state",
        "reason",
        "changed_by",
        "version",
        "epoch",
        "disabled_tools",
        "allowed_tools",
        "budget",
        "fleet_stopped",
        "fallback_message",
        "level",
        "levels",
        "pinned",
        "blocked",
        "issued_at",
        "signature",
    }
)


class PublicKeyError(ValueError):
    """The public key given to verify gate documents is not a base64 Ed25519 key."""


def load_public_key(text: str) -> Ed25519PublicKey:
    """The key from ``FIREBREAK_GATE_PUBLIC_KEY`` (base64 of its 32 raw bytes)."""
    try:
        return Ed25519PublicKey.from_public_bytes(base64.b64decode(text.strip(), validate=True))
    except (binascii.Error, ValueError) as exc:
        raise PublicKeyError(
            "FIREBREAK_GATE_PUBLIC_KEY is not a gate public key (base64 of 32 bytes, as createapikey prints it)"
        ) from exc


def canonical(doc: dict[str, Any]) -> bytes:
    """The bytes the server signed: every field but ``signature``, sorted keys, no spaces, ASCII."""
    body = {k: v for k, v in doc.items() if k != "signature"}
    return json.dumps(body, sort_keys=True, separators=(",", ":"), ensure_ascii=True).encode()


def order(doc: dict[str, Any]) -> tuple[int, int]:
    """The position of a document in the gate's history: (epoch, version)."""
    epoch = doc.get("epoch")
    return (epoch if isinstance(epoch, int) and not isinstance(epoch, bool) else 0, int(doc["version"]))


def parse_document(
    raw: bytes | str,
    agent: str,
    *,
    public_key: Ed25519PublicKey | None,
    max_age: float,
    now: float | None = None,
) -> dict[str, Any]:
    """Decode, validate and verify a gate document; raise ``ValueError`` saying what is wrong.

    Refused: anything that is not a well-formed document of ``agent``, one without a signature or
    whose signature does not verify with ``public_key``, and one issued more than ``max_age`` seconds
    from ``now`` (either way: a clock that far off cannot be trusted to order kills).
    """
    try:
        doc = json.loads(raw)
    except (UnicodeDecodeError, json.JSONDecodeError) as exc:
        raise ValueError(f"not JSON ({exc})") from exc
    if not isinstance(doc, dict):
        raise ValueError("not a JSON object")
    if doc.get("agent") not in (None, agent):
        raise ValueError(f"document is for agent {doc.get('agent')!r}")
    if doc.get("state") not in STATES:
        raise ValueError(f"unknown state {doc.get('state')!r}")
    for name in ("version", "epoch"):
        value = doc.get(name)
        if name == "epoch" and value is None:
            continue
        if not isinstance(value, int) or isinstance(value, bool):
            raise ValueError(f"{name} {value!r} is not an integer")
    for name in ("disabled_tools", "allowed_tools"):
        tools = doc.get(name) or []
        if not isinstance(tools, list) or not all(isinstance(t, str) for t in tools):
            raise ValueError(f"{name} is not a list of tool names")
    budget = doc.get("budget") or {}
    if not isinstance(budget, dict):
        raise ValueError("budget is not an object")
    for cap in BUDGET_CAPS:
        value = budget.get(cap)
        if value is not None and (
            isinstance(value, bool) or not isinstance(value, int | float) or not math.isfinite(value) or value < 0
        ):
            raise ValueError(f"budget.{cap} is {value!r}, not a non-negative number or null")
    _check_ladder(doc)
    issued_at = doc.get("issued_at")
    if not isinstance(issued_at, int) or isinstance(issued_at, bool):
        raise ValueError(f"issued_at {issued_at!r} is not an integer: not a document the server signed")
    _verify(doc, public_key)
    age = (time.time() if now is None else now) - doc["issued_at"] / 1000
    if abs(age) > max_age:
        when = "issued in the future" if age < 0 else "issued"
        raise ValueError(
            f"{when} {abs(age):.0f} s from now, outside the {max_age:g} s window (a replay, or a clock off)"
        )
    return doc


def _check_ladder(doc: dict[str, Any]) -> None:
    """``level``, ``levels``, ``pinned`` and ``blocked`` (issue 15) are well formed when present."""
    level, levels = doc.get("level"), doc.get("levels")
    if level is not None and not isinstance(level, str):
        raise ValueError(f"level {level!r} is not a name")
    if levels is not None and (not isinstance(levels, list) or not all(isinstance(n, str) for n in levels)):
        raise ValueError("levels is not a list of level names")
    pinned = doc.get("pinned")
    if pinned is not None and (
        not isinstance(pinned, dict) or not all(isinstance(pinned.get(f), str) for f in PINNED_FIELDS)
    ):
        raise ValueError("pinned is not null nor {prompt_version, model_version}")
    blocked = doc.get("blocked")
    if blocked is None:
        return
    if not isinstance(blocked, dict):
        raise ValueError("blocked is not an object")
    for kind in BLOCK_KINDS:
        entries = blocked.get(f"{kind}s") or []
        if not isinstance(entries, list):
            raise ValueError(f"blocked.{kind}s is not a list")
        for entry in entries:
            if not isinstance(entry, dict) or not isinstance(entry.get("id"), str):
                raise ValueError(f"blocked.{kind}s holds an entry without an id")
            try:
                datetime.fromisoformat(entry["expires_at"])
            except (KeyError, TypeError, ValueError):
                raise ValueError(f"blocked.{kind}s entry {entry.get('id')!r} has no valid expires_at") from None


def blocked_until(doc: dict[str, Any]) -> dict[str, dict[str, float]]:
    """``{"session": {id: expiry as a Unix time}, "user": ..., "tenant": ...}`` from a parsed document."""
    blocked = doc.get("blocked") or {}
    return {
        kind: {e["id"]: datetime.fromisoformat(e["expires_at"]).timestamp() for e in blocked.get(f"{kind}s") or []}
        for kind in BLOCK_KINDS
    }


def _verify(doc: dict[str, Any], public_key: Ed25519PublicKey | None) -> None:
    if public_key is None:
        raise ValueError("no public key to verify it with (set FIREBREAK_GATE_PUBLIC_KEY or pass public_key=)")
    signature = doc.get("signature")
    if not isinstance(signature, str) or not signature:
        raise ValueError("unsigned: only documents signed by the Firebreak server are obeyed")
    try:
        public_key.verify(base64.b64decode(signature, validate=True), canonical(doc))
    except (InvalidSignature, binascii.Error, ValueError):
        raise ValueError("its signature does not verify: not from the Firebreak server") from None
