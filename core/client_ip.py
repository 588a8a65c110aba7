"""The client's address, as far as it can be trusted: the login lockout and the throttles key on it.

``X-Forwarded-For`` is believed only from a peer in ``FIREBREAK_TRUSTED_PROXIES`` (addresses or
networks), or from a unix-socket peer (the gate server's own proxy: ``make run`` serves gunicorn on a
unix socket nobody else can reach). The header is walked from the right, skipping trusted proxies;
the first address that is not one is the client. Anyone else's header is ignored, so a client
cannot pick the address it is locked out or throttled under.
"""

from __future__ import annotations

import ipaddress
from collections.abc import Iterable
from functools import cache

from django.conf import settings
from django.http import HttpRequest

Network = ipaddress.IPv4Network | ipaddress.IPv6Network


@cache
def _networks(entries: tuple[str, ...]) -> tuple[Network, ...]:
    return tuple(ipaddress.ip_network(entry, strict=False) for entry in entries)


def trusted_networks() -> tuple[Network, ...]:
    return _networks(tuple(getattr(settings, "FIREBREAK_TRUSTED_PROXIES", ())))


def is_trusted_proxy(address: str, networks: Iterable[Network] | None = None) -> bool:
    """True for a peer whose forwarding headers may be believed: a configured proxy or a unix socket."""
    if not address or address.startswith("/") or address == "unix":  # a unix-socket peer has no IP
        return True
    try:
        ip = ipaddress.ip_address(address.strip("[]"))
    except ValueError:
        return False
    return any(ip in net for net in (trusted_networks() if networks is None else networks))


def client_ip_from(peer: str, forwarded_for: str) -> str | None:
    """The client address given the direct ``peer`` and the ``X-Forwarded-For`` value it sent."""
    if not is_trusted_proxy(peer):
        return peer or None
    hops = [hop.strip() for hop in forwarded_for.split(",") if hop.strip()]
    address = peer
    for hop in reversed(hops):
        try:
            ipaddress.ip_address(hop.strip("[]"))
        except ValueError:
            return address or None  # garbage in the chain: stop at the last address a trusted hop vouched for
        address = hop
        if not is_trusted_proxy(hop):
            return hop
    return address or None


def client_ip(request: HttpRequest) -> str | None:
    """The request's client address (see the module docstring), None when there is none (a request made
    in-process). Also django-axes' ``AXES_CLIENT_IP_CALLABLE``."""
    return client_ip_from(request.META.get("REMOTE_ADDR", "") or "", request.META.get("HTTP_X_FORWARDED_FOR", ""))
