"""The gate server's proxy says who the client is, believing forwarding headers only from trusted proxies."""

from core.proxy import forwarding_headers


def scope(peer, *headers):
    return {"client": (peer, 50000) if peer else None, "scheme": "http", "headers": list(headers)}


def header(headers, name):
    return [v for k, v in headers if k == name]


def test_an_untrusted_peers_forwarding_headers_are_replaced_by_its_own_address(settings):
    settings.FIREBREAK_TRUSTED_PROXIES = []
    sent = forwarding_headers(
        scope(
            "203.0.113.7",
            (b"x-forwarded-for", b"10.1.2.3"),
            (b"x-forwarded-proto", b"https"),
            (b"x-real-ip", b"10.1.2.3"),
            (b"accept", b"*/*"),
        )
    )
    assert header(sent, b"x-forwarded-for") == [b"203.0.113.7"]
    assert header(sent, b"x-forwarded-proto") == [b"http"]
    assert header(sent, b"x-real-ip") == []
    assert header(sent, b"accept") == [b"*/*"]


def test_a_trusted_proxys_chain_is_kept_and_the_proxy_appended(settings):
    settings.FIREBREAK_TRUSTED_PROXIES = ["10.0.0.0/8"]
    sent = forwarding_headers(scope("10.0.0.5", (b"x-forwarded-for", b"203.0.113.7"), (b"x-forwarded-proto", b"https")))
    assert header(sent, b"x-forwarded-for") == [b"203.0.113.7, 10.0.0.5"]
    assert header(sent, b"x-forwarded-proto") == [b"https"]
