"""Firebreak settings: one file, read from the environment.

DATABASE_URL / REDIS_URL select the services; when unset, real embedded
servers are started under var/ (see firebreak/embedded.py).
"""

import base64
import os
import secrets
from collections.abc import Callable
from datetime import timedelta
from pathlib import Path
from urllib.parse import parse_qsl, urlencode, urlsplit

import dj_database_url
from csp.constants import NONCE, NONE, SELF

from firebreak import embedded

BASE_DIR = Path(__file__).resolve().parent.parent
VAR_DIR = Path(os.environ.get("FIREBREAK_VAR_DIR", BASE_DIR / "var"))


def env_str(name: str, default: str = "") -> str:
    return os.environ.get(name, default)


def env_bool(name: str, default: bool = False) -> bool:
    return os.environ.get(name, str(default)).strip().lower() in {"1", "true", "yes", "on"}


def env_int(name: str, default: int) -> int:
    return int(os.environ.get(name, default))


def env_list(name: str, default: str = "") -> list[str]:
    return [part.strip() for part in os.environ.get(name, default).split(",") if part.strip()]


def _kept_secret(env: str, filename: str, make: Callable[[], str]) -> str:
    """A secret from the environment, else one made once and kept in var/ (mode 600)."""
    value = env_str(env)
    if value:
        return value
    path = VAR_DIR / filename
    if not path.exists():
        # Written aside and linked into place, so processes starting together (test workers, web and
        # worker) never read a half-written secret and all end up with the first one.
        VAR_DIR.mkdir(parents=True, exist_ok=True)
        tmp = VAR_DIR / f".{filename}.{os.getpid()}"
        tmp.write_text(make())
        tmp.chmod(0o600)
        try:
            os.link(tmp, path)
        except FileExistsError:
            pass
        finally:
            tmp.unlink()
    return path.read_text().strip()


SECRET_KEY = _kept_secret("SECRET_KEY", "secret_key", lambda: secrets.token_urlsafe(50))
DEBUG = env_bool("DEBUG", False)
ALLOWED_HOSTS = env_list("ALLOWED_HOSTS", "127.0.0.1,localhost,[::1],testserver")
CSRF_TRUSTED_ORIGINS = env_list("CSRF_TRUSTED_ORIGINS")

INSTALLED_APPS = [
    "django.contrib.admin",
    "django.contrib.auth",
    "django.contrib.contenttypes",
    "django.contrib.sessions",
    "django.contrib.messages",
    "django.contrib.staticfiles",
    "django.contrib.postgres",
    "axes",
    "csp",
    "rest_framework",
    "drf_spectacular",
    "drf_spectacular_sidecar",
    "django_htmx",
    "template_partials",
    "core",
    "agents",
    "traces",
    "incidents",
    "evals",
    "demo",
]

MIDDLEWARE = [
    "django.middleware.security.SecurityMiddleware",
    "whitenoise.middleware.WhiteNoiseMiddleware",
    "core.input_guard.BadInputMiddleware",
    "django.contrib.sessions.middleware.SessionMiddleware",
    "django.middleware.common.CommonMiddleware",
    "django.middleware.csrf.CsrfViewMiddleware",
    "django.contrib.auth.middleware.AuthenticationMiddleware",
    "core.middleware.LoginRequiredMiddleware",
    "django.contrib.messages.middleware.MessageMiddleware",
    "django.middleware.clickjacking.XFrameOptionsMiddleware",
    "django_htmx.middleware.HtmxMiddleware",
    "csp.middleware.CSPMiddleware",
    # Last, as django-axes asks: it turns a locked-out login into the lockout page.
    "axes.middleware.AxesMiddleware",
]

ROOT_URLCONF = "firebreak.urls"
WSGI_APPLICATION = "firebreak.wsgi.application"
ASGI_APPLICATION = "firebreak.asgi.application"

TEMPLATES = [
    {
        "BACKEND": "django.template.backends.django.DjangoTemplates",
        "DIRS": [BASE_DIR / "templates"],
        "APP_DIRS": True,
        "OPTIONS": {
            "context_processors": [
                "django.template.context_processors.request",
                "django.contrib.auth.context_processors.auth",
                "django.contrib.messages.context_processors.messages",
                "core.roles.role_context",
                "core.nav.nav_context",
            ],
        },
    }
]

# --- PostgreSQL -------------------------------------------------------------
if env_str("DATABASE_URL"):
    DATABASES = {"default": dj_database_url.parse(env_str("DATABASE_URL"), conn_max_age=60)}
    EMBEDDED_POSTGRES = False
else:
    _pg = embedded.ensure_postgres(VAR_DIR)
    DATABASES = {
        "default": {
            "ENGINE": "django.db.backends.postgresql",
            "HOST": _pg.socket_dir,
            "PORT": _pg.port,
            "NAME": "postgres",
            "USER": "postgres",
            "CONN_MAX_AGE": 60,
        }
    }
    EMBEDDED_POSTGRES = True
DATABASES["default"].setdefault("TEST", {})["NAME"] = env_str("FIREBREAK_TEST_DB", "test_firebreak")
# A kept connection is checked before each request reuses it: after PostgreSQL restarts, the first request
# reconnects instead of failing on the dead connection.
DATABASES["default"]["CONN_HEALTH_CHECKS"] = True
# Web requests never hold PostgreSQL longer than this (a query whose client left stops too); workers,
# beat and commands are not bounded. 0 turns it off.
FIREBREAK_WEB_STATEMENT_TIMEOUT_MS = env_int("FIREBREAK_WEB_STATEMENT_TIMEOUT_MS", 30_000)
# A read replica (optional): the pages that only read (trace list, viewer, session and user pages, incident
# and alert lists, dashboard) take the reads of these apps from it, falling back to the primary when it is
# down; ingest, the gate, kills and every write stay on the primary (core/replica.py). Agents (gate state)
# and Django's own tables (sessions, users) are always read from the primary.
if env_str("DATABASE_REPLICA_URL"):
    DATABASES["replica"] = dj_database_url.parse(env_str("DATABASE_REPLICA_URL"), conn_max_age=60)
    DATABASES["replica"]["CONN_HEALTH_CHECKS"] = True
    # A replica that does not answer costs a page 2 s at most, once per back-off (core/replica.py).
    DATABASES["replica"].setdefault("OPTIONS", {}).setdefault("connect_timeout", 2)
    # Tests read the test database through it (pytest-django makes no second test database).
    DATABASES["replica"]["TEST"] = {"MIRROR": "default"}
DATABASE_ROUTERS = ["core.replica.ReplicaRouter"]
FIREBREAK_REPLICA_APPS = ("traces", "incidents", "evals")
if os.environ.get("FIREBREAK_PROCESS") == "web" and FIREBREAK_WEB_STATEMENT_TIMEOUT_MS > 0:
    for _database in DATABASES.values():
        _options = _database.setdefault("OPTIONS", {})
        _timeout = f"-c statement_timeout={FIREBREAK_WEB_STATEMENT_TIMEOUT_MS}"
        _options["options"] = f"{_options.get('options', '')} {_timeout}".strip()
# The blast-radius regex looks at no more than this many characters of a step's arguments.
FIREBREAK_BLAST_REGEX_SCAN_CHARS = env_int("FIREBREAK_BLAST_REGEX_SCAN_CHARS", 10_000)
# A run marked running that sent nothing for this long stopped without ending: quiet, not still running.
FIREBREAK_RUN_QUIET_MINUTES = env_int("FIREBREAK_RUN_QUIET_MINUTES", 10)
# Steps older than this many days go, a whole day partition at a time (traces.retention); 0 keeps everything.
FIREBREAK_RETENTION_DAYS = env_int("FIREBREAK_RETENTION_DAYS", 30)


# --- Redis --------------------------------------------------------------------
def celery_broker_url(redis_url: str) -> str:
    """The Celery broker URL of a redis-py URL: kombu spells a unix socket ``redis+socket://`` (db as virtual_host)."""
    parts = urlsplit(redis_url)
    if parts.scheme != "unix":
        return redis_url
    query = [("virtual_host", v) if k == "db" else (k, v) for k, v in parse_qsl(parts.query)]
    return f"redis+socket://{parts.netloc}{parts.path}" + (f"?{urlencode(query)}" if query else "")


if env_str("REDIS_URL"):
    REDIS_URL = env_str("REDIS_URL")
    CELERY_BROKER_URL = celery_broker_url(REDIS_URL)
    EMBEDDED_REDIS = False
else:
    REDIS_URL = embedded.redis_url(VAR_DIR)
    CELERY_BROKER_URL = celery_broker_url(REDIS_URL)
    EMBEDDED_REDIS = True
# The gate's keys and pub/sub live in REDIS_URL's database, or in this one when set (tests use 15).
FIREBREAK_REDIS_DB = env_int("FIREBREAK_REDIS_DB", 0) if env_str("FIREBREAK_REDIS_DB") else None

CELERY_TASK_SERIALIZER = "json"
CELERY_ACCEPT_CONTENT = ["json"]
CELERY_RESULT_BACKEND = None
CELERY_TASK_IGNORE_RESULT = True
CELERY_BROKER_CONNECTION_RETRY_ON_STARTUP = True
CELERY_WORKER_HIJACK_ROOT_LOGGER = False
CELERY_TIMEZONE = "UTC"
# Detection is at least once: a task is acknowledged when it has run, not when a worker took it, so a
# worker killed mid-batch leaves the message to be delivered again (after the visibility timeout).
CELERY_TASK_ACKS_LATE = True
CELERY_TASK_REJECT_ON_WORKER_LOST = True
CELERY_WORKER_PREFETCH_MULTIPLIER = 1
# Celery's Django fix-up closes every PostgreSQL connection before and after each task unless this is set:
# a new backend a task (fork, authentication, catalog caches) cost more than the detection batch itself. The
# worker keeps its connection as web requests do instead (CONN_MAX_AGE, health-checked before each task by
# firebreak/celery.py); the fix-up still closes them every twice this many tasks.
CELERY_DB_REUSE_MAX = 1000
# Unacknowledged messages older than the visibility timeout go back to the queue; kombu looks for them every
# 5 s (its default, every 10th look of one every 10 s, would leave a dead worker's batch for ~2 minutes).
CELERY_BROKER_TRANSPORT_OPTIONS = {
    "visibility_timeout": env_int("FIREBREAK_CELERY_VISIBILITY_TIMEOUT", 60),
    "unacked_restore_interval": 5,
    "unacked_restore_throttle": 1,
}
# PostgreSQL is the gate's source of truth; this puts it back into Redis after a
# restart or flush (agents fail closed on a missing key until then).
FIREBREAK_GATE_RECONCILE_SECONDS = float(os.environ.get("FIREBREAK_GATE_RECONCILE_SECONDS", 2))
# Gate documents are signed with this Ed25519 key (base64 of its 32-byte seed); only the server holds it.
# Agents verify with the public half (`createapikey --agent` prints FIREBREAK_GATE_PUBLIC_KEY).
FIREBREAK_GATE_SIGNING_KEY = _kept_secret(
    "FIREBREAK_GATE_SIGNING_KEY", "gate_signing_key", lambda: base64.b64encode(secrets.token_bytes(32)).decode()
)
# Documents in Redis are signed again at least this often, so an agent reading Redis directly never
# holds one older than its window (the SDK's max_document_age, 60 s by default).
FIREBREAK_GATE_RESIGN_SECONDS = float(os.environ.get("FIREBREAK_GATE_RESIGN_SECONDS", 15))
# The gate server (firebreak/asgi.py, uvicorn) fronts the app: gate reads and streams it answers itself,
# the rest it forwards here (gunicorn). A ping goes down every open gate stream this often.
FIREBREAK_WEB_UPSTREAM = env_str("FIREBREAK_WEB_UPSTREAM")
FIREBREAK_GATE_PING_SECONDS = float(os.environ.get("FIREBREAK_GATE_PING_SECONDS", 15))
CELERY_BEAT_SCHEDULE: dict = {
    "gate-reconcile": {
        "task": "agents.tasks.gate_reconcile_task",
        "schedule": FIREBREAK_GATE_RECONCILE_SECONDS,
        "options": {"expires": FIREBREAK_GATE_RECONCILE_SECONDS * 2},
    },
    "canaries": {"task": "evals.tasks.canaries_run_due_task", "schedule": 60.0},
    "detect-scheduled": {
        "task": "incidents.tasks.detect_scheduled_task",
        "schedule": 300.0,
        "options": {"expires": 300},
    },
    # The next days' step partitions, and retention (FIREBREAK_RETENTION_DAYS).
    "retention": {"task": "traces.tasks.retention_task", "schedule": 3600.0, "options": {"expires": 3600}},
    "health-scores": {"task": "incidents.tasks.health_scores_task", "schedule": 60.0, "options": {"expires": 60}},
    # Batches whose detection could not be queued (the broker was down when they committed).
    "detection-backlog": {
        "task": "incidents.tasks.detection_backlog_drain_task",
        "schedule": 10.0,
        "options": {"expires": 20},
    },
}

# --- Auth ---------------------------------------------------------------------
# django-axes first: it refuses a locked-out (username, address) before any password is checked.
AUTHENTICATION_BACKENDS = ["axes.backends.AxesStandaloneBackend", "django.contrib.auth.backends.ModelBackend"]
AUTH_PASSWORD_VALIDATORS = [
    {"NAME": "django.contrib.auth.password_validation.UserAttributeSimilarityValidator"},
    {"NAME": "django.contrib.auth.password_validation.MinimumLengthValidator", "OPTIONS": {"min_length": 12}},
    {"NAME": "django.contrib.auth.password_validation.CommonPasswordValidator"},
    {"NAME": "django.contrib.auth.password_validation.NumericPasswordValidator"},
]
LOGIN_URL = "login"
LOGIN_REDIRECT_URL = "dashboard"
LOGOUT_REDIRECT_URL = "login"
SESSION_COOKIE_HTTPONLY = True
SESSION_COOKIE_SAMESITE = "Lax"
CSRF_COOKIE_SAMESITE = "Lax"
SECURE_CONTENT_TYPE_NOSNIFF = True
X_FRAME_OPTIONS = "DENY"

# Addresses or networks of the proxies in front of Firebreak (a TLS terminator, the gate server as
# seen by web): only their X-Forwarded-For and X-Forwarded-Proto are believed (core/client_ip.py).
# A unix-socket peer (the gate server's proxy under `make run`) is trusted as well.
FIREBREAK_TRUSTED_PROXIES = env_list("FIREBREAK_TRUSTED_PROXIES")

# Login lockout (django-axes): FIREBREAK_LOGIN_FAILURE_LIMIT failures for one user name from one address
# lock that pair for the cool-off; the same user from elsewhere still logs in, so an attacker cannot lock
# the break-glass admin out. Success resets the count.
AXES_FAILURE_LIMIT = env_int("FIREBREAK_LOGIN_FAILURE_LIMIT", 5)
AXES_COOLOFF_TIME = timedelta(minutes=max(1, env_int("FIREBREAK_LOGIN_COOLOFF_MINUTES", 15)))  # 0 would mean forever
AXES_LOCKOUT_PARAMETERS = [["username", "ip_address"]]
AXES_RESET_ON_SUCCESS = True
AXES_CLIENT_IP_CALLABLE = "core.client_ip.client_ip"
AXES_LOCKOUT_CALLABLE = "core.views.login_locked_out"
AXES_HTTP_RESPONSE_CODE = 429

# HTTPS (behind a TLS terminator): FIREBREAK_HTTPS=true turns on HSTS, secure cookies and the redirect
# to https (/healthz exempt: load balancers probe it over plain HTTP). The terminator tells Django the
# request was https through FIREBREAK_PROXY_SSL_HEADER (believed only from trusted proxies: the gate
# server's proxy drops it from anyone else).
FIREBREAK_HTTPS = env_bool("FIREBREAK_HTTPS", False)
if FIREBREAK_HTTPS:
    SECURE_SSL_REDIRECT = True
    SECURE_REDIRECT_EXEMPT = [r"^healthz$"]
    SECURE_HSTS_SECONDS = 365 * 24 * 3600
    SECURE_HSTS_INCLUDE_SUBDOMAINS = True
    SECURE_HSTS_PRELOAD = env_bool("FIREBREAK_HSTS_PRELOAD", False)
    SESSION_COOKIE_SECURE = True
    CSRF_COOKIE_SECURE = True
    SECURE_PROXY_SSL_HEADER = (env_str("FIREBREAK_PROXY_SSL_HEADER", "HTTP_X_FORWARDED_PROTO"), "https")
# Preloading HSTS is a promise about the whole domain that is slow to take back: the operator opts in
# (FIREBREAK_HSTS_PRELOAD=true), so Django's reminder to do so is not a warning here.
SILENCED_SYSTEM_CHECKS = ["security.W021"]

# Content Security Policy (django-csp 4): scripts only from here or inline with the request's nonce,
# never inline event handlers or eval. style-src keeps 'unsafe-inline': htmx and plotly.js insert
# <style> elements and set style attributes at run time, and templates set CSS variables in style="".
CONTENT_SECURITY_POLICY = {
    "DIRECTIVES": {
        "default-src": [SELF],
        "script-src": [SELF, NONCE],
        "style-src": [SELF, "'unsafe-inline'"],
        "img-src": [SELF, "data:", "blob:"],
        "font-src": [SELF, "data:"],
        "connect-src": [SELF],
        "object-src": [NONE],
        "base-uri": [SELF],
        "form-action": [SELF],
        "frame-ancestors": [NONE],
    }
}

REST_FRAMEWORK = {
    "DEFAULT_AUTHENTICATION_CLASSES": [
        "agents.keys.authentication.ApiKeyAuthentication",
        "rest_framework.authentication.SessionAuthentication",
    ],
    "DEFAULT_PERMISSION_CLASSES": ["rest_framework.permissions.IsAuthenticated"],
    "DEFAULT_SCHEMA_CLASS": "drf_spectacular.openapi.AutoSchema",
    "DEFAULT_RENDERER_CLASSES": ["rest_framework.renderers.JSONRenderer"],
    "DEFAULT_PARSER_CLASSES": [
        "core.parsers.BoundedJSONParser",
        "rest_framework.parsers.FormParser",
        "rest_framework.parsers.MultiPartParser",
    ],
    "EXCEPTION_HANDLER": "core.api.exception_handler",
    # Per key and per person (core/throttling.py); ingest has its own per-key rate, gate reads none.
    "DEFAULT_THROTTLE_CLASSES": ["core.throttling.ApiKeyRateThrottle", "core.throttling.UserRateThrottle"],
    "UNAUTHENTICATED_USER": "django.contrib.auth.models.AnonymousUser",
}
SPECTACULAR_SETTINGS = {
    "TITLE": "Firebreak API",
    "DESCRIPTION": "Incident response for AI agents: the gate, ingest, incidents and evals.",
    "VERSION": "1.0.0",
    "SERVE_INCLUDE_SCHEMA": False,
    "SWAGGER_UI_DIST": "SIDECAR",
    "SWAGGER_UI_FAVICON_HREF": "SIDECAR",
    "REDOC_DIST": "SIDECAR",
    "COMPONENT_SPLIT_REQUEST": True,
    # People only (a session or a person's key); an agent key gets a 403 in JSON (core.api.SchemaView).
    "SERVE_PERMISSIONS": ["agents.permissions.IsPerson"],
}

# Requests allowed per window ("600/min", "20/s", "off"), counted in Redis; when Redis is down they are
# not counted at all (fail open: ingest keeps writing to PostgreSQL). Over the rate: 429 + Retry-After.
FIREBREAK_THROTTLE_RATES = {
    "key": env_str("FIREBREAK_THROTTLE_KEY_RATE", "600/min"),
    "user": env_str("FIREBREAK_THROTTLE_USER_RATE", "1200/min"),
    "ingest": env_str("FIREBREAK_THROTTLE_INGEST_RATE", "1200/min"),
}

# --- Static -------------------------------------------------------------------
STATIC_URL = "static/"
STATIC_ROOT = Path(env_str("STATIC_ROOT", str(BASE_DIR / "var" / "staticfiles")))
STATIC_ROOT.mkdir(parents=True, exist_ok=True)  # whitenoise warns on a missing root
# htmx ships with django-htmx; plotly.js is served from the installed plotly
# package (no CDN: responders' networks are often locked down).
import plotly  # noqa: E402

STATICFILES_DIRS = [BASE_DIR / "static", Path(plotly.__file__).parent / "package_data"]
STORAGES = {
    "default": {"BACKEND": "django.core.files.storage.FileSystemStorage"},
    "staticfiles": {"BACKEND": "whitenoise.storage.CompressedStaticFilesStorage"},
}
WHITENOISE_USE_FINDERS = True

LANGUAGE_CODE = "en-us"
TIME_ZONE = "UTC"
USE_I18N = False
USE_TZ = True
DEFAULT_AUTO_FIELD = "django.db.models.BigAutoField"

# --- Firebreak ----------------------------------------------------------------
# Redaction of every string a span carries (core/redaction.py has the default keys and patterns): more
# sensitive key names, more regexes (the match is replaced), default patterns switched off by name
# (jwt, bearer, openai_key, aws_key, github_token, slack_token, google_key, url_password, url_token, card,
# ssn), and the HMAC key of the placeholders (defaults to SECRET_KEY).
FIREBREAK_REDACT_KEYS = env_list("FIREBREAK_REDACT_KEYS")
FIREBREAK_REDACT_PATTERNS = [p for p in env_str("FIREBREAK_REDACT_PATTERNS").splitlines() if p.strip()]  # one a line
FIREBREAK_REDACT_DISABLE = env_list("FIREBREAK_REDACT_DISABLE")
FIREBREAK_REDACT_SECRET = env_str("FIREBREAK_REDACT_SECRET", "")
FIREBREAK_INGEST_MAX_BYTES = env_int("FIREBREAK_INGEST_MAX_BYTES", 16 * 1024 * 1024)
FIREBREAK_INGEST_MAX_SPANS = env_int("FIREBREAK_INGEST_MAX_SPANS", 10_000)
# While PostgreSQL is down, ingest keeps what it acknowledges here (local disk, fsynced) and drains it in
# order when the database is back; 503 + Retry-After only when the spool cannot take a batch.
FIREBREAK_SPOOL_DIR = env_str("FIREBREAK_SPOOL_DIR", str(VAR_DIR / "spool" / "ingest"))
FIREBREAK_SPOOL_MAX_BYTES = env_int("FIREBREAK_SPOOL_MAX_BYTES", 1024 * 1024 * 1024)
# Apprise URLs for incident notifications (comma separated).
FIREBREAK_NOTIFY_URLS = env_list("FIREBREAK_NOTIFY_URLS")
FIREBREAK_BASE_URL = env_str("FIREBREAK_BASE_URL", "http://127.0.0.1:8000")

# LLM-as-judge for the judge_score detector (OpenAI-compatible base URL, e.g. http://127.0.0.1:8080/v1); off when empty.
FIREBREAK_JUDGE_URL = env_str("FIREBREAK_JUDGE_URL")
FIREBREAK_JUDGE_MODEL = env_str("FIREBREAK_JUDGE_MODEL")
FIREBREAK_JUDGE_API_KEY = env_str("FIREBREAK_JUDGE_API_KEY")

LOGGING = {
    "version": 1,
    "disable_existing_loggers": False,
    # Every line is scrubbed like span content (core/redaction.py) before it is written.
    "filters": {"redact": {"()": "core.redaction.RedactingFilter"}},
    "handlers": {"console": {"class": "logging.StreamHandler", "filters": ["redact"]}},
    "root": {"handlers": ["console"], "level": env_str("LOG_LEVEL", "INFO")},
    "loggers": {
        "django.db.backends": {"level": "WARNING"},
        "embedded_postgres": {"level": "WARNING"},
        "httpx": {"level": "WARNING"},  # the gate server's proxy: one line a request is gunicorn's to log
        "httpcore": {"level": "WARNING"},
    },
}

# --- Issue trackers for post-mortem action items (issue 14, item 5) ----------------------------------
# Each tracker is on when its settings are set; the post-mortem page offers the ones that are. Webhooks
# (/api/v1/integrations/<tracker>/webhook) move an item when its issue is closed or reopened there.
FIREBREAK_JIRA_URL = env_str("FIREBREAK_JIRA_URL")  # https://<site>.atlassian.net
FIREBREAK_JIRA_EMAIL = env_str("FIREBREAK_JIRA_EMAIL")
FIREBREAK_JIRA_API_TOKEN = env_str("FIREBREAK_JIRA_API_TOKEN")
FIREBREAK_JIRA_PROJECT = env_str("FIREBREAK_JIRA_PROJECT")  # the project key, e.g. OPS
FIREBREAK_JIRA_ISSUE_TYPE = env_str("FIREBREAK_JIRA_ISSUE_TYPE", "Task")
FIREBREAK_JIRA_WEBHOOK_SECRET = env_str("FIREBREAK_JIRA_WEBHOOK_SECRET")
FIREBREAK_LINEAR_API_KEY = env_str("FIREBREAK_LINEAR_API_KEY")
FIREBREAK_LINEAR_TEAM_ID = env_str("FIREBREAK_LINEAR_TEAM_ID")
FIREBREAK_LINEAR_API_URL = env_str("FIREBREAK_LINEAR_API_URL", "https://api.linear.app/graphql")
FIREBREAK_LINEAR_WEBHOOK_SECRET = env_str("FIREBREAK_LINEAR_WEBHOOK_SECRET")
FIREBREAK_GITHUB_TOKEN = env_str("FIREBREAK_GITHUB_TOKEN")
FIREBREAK_GITHUB_REPO = env_str("FIREBREAK_GITHUB_REPO")  # owner/name
FIREBREAK_GITHUB_API_URL = env_str("FIREBREAK_GITHUB_API_URL", "https://api.github.com")
FIREBREAK_GITHUB_WEBHOOK_SECRET = env_str("FIREBREAK_GITHUB_WEBHOOK_SECRET")
# Inbound alerts (issue 14, item 3): Alertmanager, Grafana, Datadog and generic webhooks post alerts to
# /api/v1/integrations/<source>. A body above the byte limit is a 413; a batch above the alert limit a 400.
FIREBREAK_INBOUND_MAX_BYTES = env_int("FIREBREAK_INBOUND_MAX_BYTES", 1024 * 1024)
FIREBREAK_INBOUND_MAX_ALERTS = env_int("FIREBREAK_INBOUND_MAX_ALERTS", 1000)
# The firing/resolved choice the Alertmanager and Grafana payloads share: one named enum in the schema.
SPECTACULAR_SETTINGS.setdefault("ENUM_NAME_OVERRIDES", {})["InboundAlertStatusEnum"] = [  # type: ignore[index]
    ("firing", "firing"),
    ("resolved", "resolved"),
]
# --- Single sign-on (OpenID Connect, issue 14) --------------------------------------------------------
# Off unless FIREBREAK_OIDC_ISSUER and FIREBREAK_OIDC_CLIENT_ID are set. The provider's endpoints are
# discovered from <issuer>/.well-known/openid-configuration on first use (a provider that is down does
# not stop Firebreak starting). Redirect URI to register at the provider: <base URL>/accounts/sso/callback/.
# FIREBREAK_OIDC_ROLE_GROUPS: comma-separated role=group pairs (a role may repeat; * = everyone), e.g.
# "admin=firebreak-admins,responder=oncall,viewer=*"; the highest matching role wins, none → refused.
FIREBREAK_OIDC_ISSUER = env_str("FIREBREAK_OIDC_ISSUER").rstrip("/")
FIREBREAK_OIDC_CLIENT_ID = env_str("FIREBREAK_OIDC_CLIENT_ID")
FIREBREAK_OIDC_CLIENT_SECRET = env_str("FIREBREAK_OIDC_CLIENT_SECRET")
FIREBREAK_OIDC_GROUPS_CLAIM = env_str("FIREBREAK_OIDC_GROUPS_CLAIM", "groups")
FIREBREAK_OIDC_ROLE_GROUPS = env_str("FIREBREAK_OIDC_ROLE_GROUPS")
FIREBREAK_OIDC_PROVIDER_NAME = env_str("FIREBREAK_OIDC_PROVIDER_NAME")  # "Sign in with <name>"; default: host
FIREBREAK_OIDC_SCOPES = env_str("FIREBREAK_OIDC_SCOPES", "openid email profile")
INSTALLED_APPS += ["core.sso"]
# After the password backends: Django asks each in turn; this one only answers the SSO callback.
AUTHENTICATION_BACKENDS += ["core.sso.backends.FirebreakOidcBackend"]
# mozilla-django-oidc: authorization code flow with PKCE and a nonce, RS256 ID tokens checked against the
# provider's JWKS; the ID token is kept in the session for the provider's logout (id_token_hint).
OIDC_RP_SIGN_ALGO = "RS256"
OIDC_RP_SCOPES = FIREBREAK_OIDC_SCOPES
OIDC_USE_PKCE = True
OIDC_STORE_ID_TOKEN = True
OIDC_TIMEOUT = 10
OIDC_AUTHENTICATION_CALLBACK_URL = "sso:sso-callback"
# --- PagerDuty paging (issue 14): Events API v2 out, signed v3 webhooks in ------------------------------------
# No routing key: paging is off and nothing is sent (the detector settings page says so).
FIREBREAK_PAGERDUTY_ROUTING_KEY = env_str("FIREBREAK_PAGERDUTY_ROUTING_KEY")
FIREBREAK_PAGERDUTY_EVENTS_URL = env_str("FIREBREAK_PAGERDUTY_EVENTS_URL", "https://events.pagerduty.com/v2/enqueue")
# The v3 webhook subscription's signing secret; several, comma separated, while one is being rotated.
FIREBREAK_PAGERDUTY_WEBHOOK_SECRET = env_str("FIREBREAK_PAGERDUTY_WEBHOOK_SECRET")
# Attempts per event (429, 5xx, no answer) before the delivery is failed for good; backoff 1, 2, 4… s capped at
# 60 s, or PagerDuty's Retry-After.
FIREBREAK_PAGERDUTY_MAX_ATTEMPTS = env_int("FIREBREAK_PAGERDUTY_MAX_ATTEMPTS", 6)
FIREBREAK_PAGERDUTY_TIMEOUT = env_int("FIREBREAK_PAGERDUTY_TIMEOUT", 10)
# Pages recorded while the broker was down are queued again by beat.
CELERY_BEAT_SCHEDULE["pagerduty-requeue"] = {
    "task": "incidents.integrations.pagerduty.tasks.pagerduty_requeue_task",
    "schedule": 60.0,
    "options": {"expires": 60},
}
# --- Slack app (issue 14, item 4: chat where the incident is worked) --------------------------------
# Outbound is off without a bot token; inbound (/api/v1/integrations/slack/*) refuses every request
# without a signing secret. FIREBREAK_SLACK_API_URL is Slack's Web API (a local receiver in tests).
FIREBREAK_SLACK_BOT_TOKEN = env_str("FIREBREAK_SLACK_BOT_TOKEN")
FIREBREAK_SLACK_SIGNING_SECRET = env_str("FIREBREAK_SLACK_SIGNING_SECRET")
FIREBREAK_SLACK_API_URL = env_str("FIREBREAK_SLACK_API_URL", "https://slack.com/api/")
# Channel (name or id) for alerts with Kill / Pause / Acknowledge buttons; off when empty.
FIREBREAK_SLACK_ALERTS_CHANNEL = env_str("FIREBREAK_SLACK_ALERTS_CHANNEL")
# Replies to button presses go to the request's response_url only when it starts with one of these.
FIREBREAK_SLACK_RESPONSE_URL_PREFIXES = env_list("FIREBREAK_SLACK_RESPONSE_URL_PREFIXES", "https://hooks.slack.com/")
# --- Notifications through Apprise (issue 14: routes, retries) -------------------------------------------
# FIREBREAK_NOTIFY_URLS (above) is the route "default": every event. FIREBREAK_NOTIFY_ROUTES adds named
# routes, a JSON list (inline, or the path of a .json file) of {"name", "urls", "agents", "severities",
# "events"}; checked at start-up (incidents.notifications.routes). Each delivery is tried
# FIREBREAK_NOTIFY_ATTEMPTS times, waiting FIREBREAK_NOTIFY_RETRY_SECONDS * 2^n (capped) between tries.
FIREBREAK_NOTIFY_ROUTES = env_str("FIREBREAK_NOTIFY_ROUTES")
FIREBREAK_NOTIFY_ATTEMPTS = env_int("FIREBREAK_NOTIFY_ATTEMPTS", 5)
FIREBREAK_NOTIFY_RETRY_SECONDS = env_int("FIREBREAK_NOTIFY_RETRY_SECONDS", 15)
FIREBREAK_NOTIFY_RETRY_MAX_SECONDS = env_int("FIREBREAK_NOTIFY_RETRY_MAX_SECONDS", 600)
CELERY_BEAT_SCHEDULE["postmortems-overdue-notify"] = {
    "task": "incidents.notifications.postmortems_overdue",
    "schedule": 3600.0,
    "options": {"expires": 3600},
}

# --- Issue 15, the gate's level, pinned and blocked (agents/containment.py, incidents/last_known_good.py) ---
# Rollback pins the versions of the newest traces in the last window this wide without alerts on the agent,
# looking back this many days.
FIREBREAK_ROLLBACK_WINDOW_MINUTES = env_int("FIREBREAK_ROLLBACK_WINDOW_MINUTES", 60)
FIREBREAK_ROLLBACK_LOOKBACK_DAYS = env_int("FIREBREAK_ROLLBACK_LOOKBACK_DAYS", 14)

# --- OpenAPI enum names: choice sets that share a field name ("kind", "status") get names of their own,
# so the schema is stable and `check --deploy` has no drf-spectacular warning.
SPECTACULAR_SETTINGS["ENUM_NAME_OVERRIDES"].update(  # type: ignore[attr-defined]
    {
        "ActionItemKindEnum": "incidents.models.ActionItem.Kind",
        "ActionItemStatusEnum": "incidents.models.ActionItem.Status",
        "PostMortemStatusEnum": "incidents.models.PostMortem.Status",
        "ChangeKindEnum": "agents.models.ChangeKind",
    }
)
