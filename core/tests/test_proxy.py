"""The gate server's proxy says who the client is, believing forwarding headers only from trusted proxies."""

import asyncio
import concurrent.futures
import http.server
import socket
import threading

import pytest

from core.proxy import UpstreamProxy, forwarding_headers


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


class _Who(http.server.BaseHTTPRequestHandler):
    def do_GET(self):  # http.server's name
        body = f"{self.server.server_address[0]} {self.headers['Host']}".encode()
        self.send_response(200)
        self.send_header("Content-Length", str(len(body)))
        self.end_headers()
        self.wfile.write(body)

    def log_message(self, *args):
        pass


@pytest.fixture
def two_web_containers(monkeypatch):
    """Two upstream servers on one port at 127.0.0.1 and 127.0.0.2, and the name ``web`` resolving to both
    (what compose's DNS answers for ``web`` scaled to 2)."""
    first = http.server.ThreadingHTTPServer(("127.0.0.1", 0), _Who)
    second = http.server.ThreadingHTTPServer(("127.0.0.2", first.server_address[1]), _Who)
    for server in (first, second):
        threading.Thread(target=server.serve_forever, daemon=True).start()
    real = socket.getaddrinfo

    def getaddrinfo(host, port, *args, **kwargs):
        if host != "web":
            return real(host, port, *args, **kwargs)
        return [(socket.AF_INET, socket.SOCK_STREAM, 6, "", (ip, port)) for ip in ("127.0.0.2", "127.0.0.1")]

    monkeypatch.setattr(socket, "getaddrinfo", getaddrinfo)
    yield first.server_address[1]
    for server in (first, second):
        server.shutdown()
        server.server_close()


def test_requests_go_to_every_address_of_a_scaled_upstream_in_turn(two_web_containers, settings):
    settings.FIREBREAK_TRUSTED_PROXIES = []

    async def get(proxy):
        sent = []

        async def receive():
            return {"type": "http.request", "body": b"", "more_body": False}

        async def send(message):
            sent.append(message)

        http_scope = {**scope("203.0.113.7", (b"host", b"firebreak.example")), "type": "http", "method": "GET"}
        await proxy(http_scope | {"path": "/who", "raw_path": b"/who", "query_string": b""}, receive, send)
        assert sent[0]["status"] == 200
        return b"".join(m.get("body", b"") for m in sent[1:]).decode()

    async def four():
        proxy = UpstreamProxy(f"http://web:{two_web_containers}")
        try:
            return [await get(proxy) for _ in range(4)]
        finally:
            await proxy.aclose()

    # In a thread of its own: the browser tests leave Playwright's event loop running in the worker's main thread.
    with concurrent.futures.ThreadPoolExecutor(max_workers=1) as pool:
        answers = pool.submit(asyncio.run, four()).result()
    # In turn over both containers, each seeing the client's own Host header (what ALLOWED_HOSTS checks).
    assert answers == [
        "127.0.0.1 firebreak.example",
        "127.0.0.2 firebreak.example",
        "127.0.0.1 firebreak.example",
        "127.0.0.2 firebreak.example",
    ]
