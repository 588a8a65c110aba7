"""Gate documents signed by the server, so an agent can tell the server's word from anyone else's.

A document is signed with Ed25519 over its canonical JSON (sorted keys, no spaces, ASCII) without
the ``signature`` field; ``issued_at`` (milliseconds since the epoch, server clock) is inside what
is signed, so a document cannot be made younger. The SDK holds the public key
(``FIREBREAK_GATE_PUBLIC_KEY``) and stops on anything unsigned, forged or too old.

The ETag of a document covers its content only (not ``issued_at`` nor ``signature``): a document
signed again with the same content keeps its ETag, and a poll answers 304.
"""

import base64
import binascii
import hashlib
import json
import time
from collections.abc import Mapping
from functools import cache
from typing import Any

from cryptography.exceptions import InvalidSignature
from cryptography.hazmat.primitives.asymmetric.ed25519 import Ed25519PrivateKey, Ed25519PublicKey
from cryptography.hazmat.primitives.serialization import Encoding, PublicFormat
from django.conf import settings

SIGNATURE = "signature"
ISSUED_AT = "issued_at"
UNSIGNED_FIELDS = frozenset({SIGNATURE})
# Fields that change when a document is signed again without changing what it says.
ISSUE_FIELDS = frozenset({SIGNATURE, ISSUED_AT})


class SigningKeyError(RuntimeError):
    """FIREBREAK_GATE_SIGNING_KEY is not the base64 of a 32-byte Ed25519 seed."""


def canonical(doc: Mapping[str, Any], *, leave_out: frozenset[str] = UNSIGNED_FIELDS) -> bytes:
    """The bytes that are signed (and hashed for the ETag): sorted keys, no spaces, ASCII only."""
    body = {k: v for k, v in doc.items() if k not in leave_out}
    return json.dumps(body, sort_keys=True, separators=(",", ":"), ensure_ascii=True).encode()


@cache
def signing_key() -> Ed25519PrivateKey:
    try:
        seed = base64.b64decode(settings.FIREBREAK_GATE_SIGNING_KEY, validate=True)
        return Ed25519PrivateKey.from_private_bytes(seed)
    except (binascii.Error, ValueError) as exc:
        raise SigningKeyError("FIREBREAK_GATE_SIGNING_KEY must be the base64 of a 32-byte Ed25519 seed") from exc


def public_key_text(key: Ed25519PrivateKey | None = None) -> str:
    """The public half as agents are given it: base64 of the 32 raw bytes."""
    public = (key or signing_key()).public_key().public_bytes(Encoding.Raw, PublicFormat.Raw)
    return base64.b64encode(public).decode()


def now_ms() -> int:
    return int(time.time() * 1000)


def document_sign(content: Mapping[str, Any], *, issued_at: int | None = None) -> dict[str, Any]:
    """``content`` with ``issued_at`` (now unless given) and its ``signature``."""
    doc = {k: v for k, v in content.items() if k not in ISSUE_FIELDS}
    doc[ISSUED_AT] = now_ms() if issued_at is None else issued_at
    doc[SIGNATURE] = base64.b64encode(signing_key().sign(canonical(doc))).decode()
    return doc


def document_verify(doc: Mapping[str, Any], public_key: str | None = None) -> bool:
    """True when ``doc`` carries a valid signature by the server's key (or the given public key)."""
    signature = doc.get(SIGNATURE)
    if not isinstance(signature, str):
        return False
    try:
        raw = base64.b64decode(signature, validate=True)
        key = (
            Ed25519PublicKey.from_public_bytes(base64.b64decode(public_key))
            if public_key
            else signing_key().public_key()
        )
        key.verify(raw, canonical(doc))
    except (InvalidSignature, binascii.Error, ValueError):
        return False
    return True


def document_etag(doc: Mapping[str, Any]) -> str:
    """A strong ETag over the content fields only: the same content signed again keeps it."""
    return '"' + hashlib.sha256(canonical(doc, leave_out=ISSUE_FIELDS)).hexdigest()[:32] + '"'


def content_of(doc: Mapping[str, Any]) -> dict[str, Any]:
    """The document without what signing adds."""
    return {k: v for k, v in doc.items() if k not in ISSUE_FIELDS}
