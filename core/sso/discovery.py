"""The provider's endpoints, from ``<issuer>/.well-known/openid-configuration``, fetched on first use and kept.

Firebreak starts whether or not the provider answers: nothing here runs at import or start-up. A provider
that does not answer is asked again after ``RETRY_SECONDS`` (so the login page does not wait on it at
every view), one that answered is asked again after ``KEEP_SECONDS`` (keys and endpoints do move).
"""

from __future__ import annotations

import threading
import time
from dataclasses import dataclass
from typing import Any

import httpx

TIMEOUT_SECONDS = 5.0
KEEP_SECONDS = 3600.0
RETRY_SECONDS = 30.0
REQUIRED = ("authorization_endpoint", "token_endpoint", "jwks_uri")


class ProviderUnreachable(Exception):
    """The provider's discovery document could not be fetched or is not usable; ``str()`` says why."""


@dataclass(frozen=True)
class ProviderMetadata:
    issuer: str
    authorization_endpoint: str
    token_endpoint: str
    jwks_uri: str
    userinfo_endpoint: str | None
    end_session_endpoint: str | None
    # Discovery 1.0 §3: when the provider lists none, client_secret_basic is the default.
    token_auth_methods: tuple[str, ...] = ("client_secret_basic",)


_lock = threading.Lock()
_cache: dict[str, tuple[float, ProviderMetadata | None, str]] = {}


def discovery_url(issuer: str) -> str:
    return issuer.rstrip("/") + "/.well-known/openid-configuration"


def _fetch(issuer: str) -> ProviderMetadata:
    try:
        response = httpx.get(discovery_url(issuer), timeout=TIMEOUT_SECONDS, follow_redirects=False)
    except httpx.HTTPError as exc:
        raise ProviderUnreachable(f"{discovery_url(issuer)}: {exc.__class__.__name__}") from exc
    if response.status_code != 200:
        raise ProviderUnreachable(f"{discovery_url(issuer)} answered {response.status_code}")
    try:
        document: Any = response.json()
    except ValueError as exc:
        raise ProviderUnreachable(f"{discovery_url(issuer)} did not answer JSON") from exc
    if not isinstance(document, dict):
        raise ProviderUnreachable(f"{discovery_url(issuer)} did not answer a JSON object")
    # OpenID Connect Discovery 1.0 §4.3: the issuer in the document MUST be the one we asked.
    if str(document.get("issuer", "")).rstrip("/") != issuer.rstrip("/"):
        raise ProviderUnreachable(f"{discovery_url(issuer)} names another issuer: {document.get('issuer')!r}")
    missing = [key for key in REQUIRED if not isinstance(document.get(key), str) or not document[key]]
    if missing:
        raise ProviderUnreachable(f"{discovery_url(issuer)} lacks {', '.join(missing)}")
    return ProviderMetadata(
        issuer=str(document["issuer"]),
        authorization_endpoint=document["authorization_endpoint"],
        token_endpoint=document["token_endpoint"],
        jwks_uri=document["jwks_uri"],
        userinfo_endpoint=document.get("userinfo_endpoint") or None,
        end_session_endpoint=document.get("end_session_endpoint") or None,
        token_auth_methods=tuple(
            method
            for method in document.get("token_endpoint_auth_methods_supported") or ["client_secret_basic"]
            if isinstance(method, str)
        ),
    )


def provider_metadata(issuer: str) -> ProviderMetadata:
    """The provider's endpoints (kept for an hour); raises ProviderUnreachable (remembered for 30 s)."""
    now = time.monotonic()
    with _lock:
        cached = _cache.get(issuer)
    if cached and cached[0] > now:
        if cached[1] is None:
            raise ProviderUnreachable(cached[2])
        return cached[1]
    try:
        metadata = _fetch(issuer)
    except ProviderUnreachable as exc:
        with _lock:
            _cache[issuer] = (now + RETRY_SECONDS, None, str(exc))
        raise
    with _lock:
        _cache[issuer] = (now + KEEP_SECONDS, metadata, "")
    return metadata


def provider_metadata_cached(issuer: str) -> ProviderMetadata | None:
    """What is already known, without asking the provider (logout must not wait on it)."""
    with _lock:
        cached = _cache.get(issuer)
    return cached[1] if cached else None


def discovery_forget() -> None:
    """Drop what is kept (tests, and a changed issuer)."""
    with _lock:
        _cache.clear()
