"""Run the test provider: ``python -m tests.oidc_provider.serve`` with OP_SEED (JSON) and OP_DIR set.

Binds a free loopback port first (so the issuer URL is known before Django reads its settings), makes a
fresh RSA key, builds its tables in a fresh PostgreSQL database of its own (OP_DATABASE), creates the
seeded users, groups and client, prints ``ready <port>`` and serves until killed.
"""

import json
import os
import sys
from socketserver import ThreadingMixIn
from wsgiref.simple_server import WSGIRequestHandler, WSGIServer, make_server

from cryptography.hazmat.primitives import serialization
from cryptography.hazmat.primitives.asymmetric import rsa


class _Server(ThreadingMixIn, WSGIServer):
    daemon_threads = True


class _QuietHandler(WSGIRequestHandler):
    def log_message(self, format, *args):
        pass


def _placeholder(environ, start_response):
    start_response("503 Service Unavailable", [("Content-Type", "text/plain")])
    return [b"starting"]


def main() -> None:
    seed = json.loads(os.environ["OP_SEED"])
    server = make_server("127.0.0.1", 0, _placeholder, server_class=_Server, handler_class=_QuietHandler)
    port = server.server_port
    key = rsa.generate_private_key(public_exponent=65537, key_size=2048)
    os.environ["OP_RSA_PRIVATE_KEY"] = key.private_bytes(
        serialization.Encoding.PEM, serialization.PrivateFormat.PKCS8, serialization.NoEncryption()
    ).decode()
    os.environ["OP_ISSUER"] = f"http://127.0.0.1:{port}/o"
    os.environ["DJANGO_SETTINGS_MODULE"] = "tests.oidc_provider.settings"

    import django
    from django.core.management import call_command

    django.setup()
    call_command("migrate", run_syncdb=True, verbosity=0, interactive=False)

    from django.contrib.auth.models import Group, User
    from django.core.handlers.wsgi import WSGIHandler
    from oauth2_provider.models import Application

    for person in seed["users"]:
        user = User.objects.create_user(person["username"], email=person.get("email", ""), password=person["password"])
        for name in person.get("groups", []):
            user.groups.add(Group.objects.get_or_create(name=name)[0])
    client = seed["client"]
    Application.objects.create(
        name="Firebreak",
        client_id=client["client_id"],
        client_secret=client["client_secret"],
        client_type=Application.CLIENT_CONFIDENTIAL,
        authorization_grant_type=Application.GRANT_AUTHORIZATION_CODE,
        # Loopback: any port matches (RFC 8252 §7.3), so the live server's port need not be known here.
        redirect_uris=" ".join(client["redirect_uris"]),
        post_logout_redirect_uris=" ".join(client.get("post_logout_redirect_uris", [])),
        algorithm=Application.RS256_ALGORITHM,
        skip_authorization=True,
    )
    server.set_app(WSGIHandler())
    sys.stdout.write(f"ready {port}\n")
    sys.stdout.flush()
    server.serve_forever()


if __name__ == "__main__":
    main()
