"""``firebreak``: the on-call terminal. Reads ``FIREBREAK_URL`` and ``FIREBREAK_API_KEY`` (a person's key,
scope ``api``, made on /keys/ or with ``POST /api/v1/keys``) and talks to Firebreak's API.

    firebreak status                               agents with their gate, open incidents, open alerts
    firebreak kill <agent> [--reason TEXT]         stop an agent now
    firebreak pause <agent> [--reason TEXT]
    firebreak resume <agent> --reason TEXT         a reason is required
    firebreak declare --severity SEV2 "<title>" [--agent SLUG …] [--class SLUG]
    firebreak incidents [--open] [--status S] [--severity SEVn]
    firebreak alerts [--agent SLUG] [--status open|acknowledged|resolved]

``--json`` (before or after the command) prints the API's JSON instead of a table.

Exit codes: 0 done; 1 refused by Firebreak (bad key, no permission, unknown agent, a conflict, bad
input); 2 usage (bad arguments, FIREBREAK_URL or FIREBREAK_API_KEY unset); 3 unreachable (no
connection, timeout, Firebreak unavailable or failing).
"""

from __future__ import annotations

import argparse
import json
import os
import sys
from collections.abc import Callable, Sequence
from typing import Any, NoReturn, TextIO
from urllib.parse import quote

import httpx

EXIT_OK, EXIT_REFUSED, EXIT_USAGE, EXIT_UNREACHABLE = 0, 1, 2, 3
TIMEOUT_SECONDS = 10.0
SEVERITIES = ("SEV1", "SEV2", "SEV3")
PAGE_LIMIT = 200  # the API's largest page
MAX_ROWS = 2000


class CliError(Exception):
    """A message for the person at the terminal and the exit code that goes with it."""

    def __init__(self, message: str, code: int) -> None:
        super().__init__(message)
        self.code = code


class Client:
    """Firebreak's API over HTTP with a person's key; every failure becomes a CliError in plain words."""

    def __init__(self, url: str, api_key: str, *, transport: httpx.BaseTransport | None = None) -> None:
        self.url = url.rstrip("/")
        self._http = httpx.Client(
            base_url=self.url,
            headers={"Authorization": f"Bearer {api_key}", "Accept": "application/json"},
            timeout=TIMEOUT_SECONDS,
            transport=transport,
        )

    def get(self, path: str, params: dict[str, Any] | None = None, *, agent: str | None = None) -> Any:
        return self._call("GET", path, params=params, agent=agent)

    def post(self, path: str, body: dict[str, Any] | None = None, *, agent: str | None = None) -> Any:
        return self._call("POST", path, body=body or {}, agent=agent)

    def _call(
        self,
        method: str,
        path: str,
        *,
        params: dict[str, Any] | None = None,
        body: dict[str, Any] | None = None,
        agent: str | None = None,
    ) -> Any:
        try:
            response = self._http.request(
                method, path, params={k: v for k, v in (params or {}).items() if v not in (None, "")}, json=body
            )
        except httpx.TimeoutException:
            raise CliError(
                f"FIREBREAK_URL={self.url} did not answer within {TIMEOUT_SECONDS:g} s", EXIT_UNREACHABLE
            ) from None
        except httpx.HTTPError as exc:
            raise CliError(f"cannot reach FIREBREAK_URL={self.url} ({_reason(exc)})", EXIT_UNREACHABLE) from None
        if response.status_code < 300:
            try:
                return response.json()
            except ValueError:
                raise CliError(
                    f"FIREBREAK_URL={self.url} answered with something other than Firebreak's API "
                    f"(HTTP {response.status_code}, {response.headers.get('content-type', 'no content type')})",
                    EXIT_UNREACHABLE,
                ) from None
        raise _refusal(response, agent=agent, url=self.url)


def _reason(exc: Exception) -> str:
    text = str(exc) or type(exc).__name__
    return "connection refused" if "refused" in text.lower() else text


def _refusal(response: httpx.Response, *, agent: str | None, url: str) -> CliError:
    """The API's error as a sentence: its ``error`` and, for bad input, each field's messages."""
    status = response.status_code
    try:
        body = response.json()
    except ValueError:
        body = {}
    if not isinstance(body, dict):
        body = {}
    message = str(body.get("error") or "").strip()
    if status == 401:
        return CliError("the API key was refused: check FIREBREAK_API_KEY", EXIT_REFUSED)
    if status == 403:
        return CliError(f"not allowed: {message or 'this key cannot do that'}", EXIT_REFUSED)
    if status == 404 and agent is not None:
        return CliError(f"no agent named {agent}", EXIT_REFUSED)
    if status == 404:
        return CliError(message or "not found", EXIT_REFUSED)
    if status == 409:
        details = body.get("blockers") or body.get("loose_ends") or []
        return CliError("; ".join([message or "conflict", *map(str, details)]), EXIT_REFUSED)
    if status in (502, 503, 504):
        retry = response.headers.get("Retry-After", "")
        wait = f"retry in {retry} s" if retry.isdigit() else "retry shortly"
        return CliError(f"Firebreak is unavailable, {wait}", EXIT_UNREACHABLE)
    if status >= 500:
        return CliError(f"Firebreak failed (HTTP {status}) at FIREBREAK_URL={url}", EXIT_UNREACHABLE)
    if status == 429:
        retry = response.headers.get("Retry-After", "")
        return CliError(f"too many requests, retry in {retry or 'a few'} s", EXIT_REFUSED)
    return CliError(_field_errors(message or f"refused (HTTP {status})", body.get("detail")), EXIT_REFUSED)


def _field_errors(message: str, detail: Any) -> str:
    if isinstance(detail, dict):
        parts = [f"{field}: {' '.join(map(str, m)) if isinstance(m, list) else m}" for field, m in detail.items()]
        return f"{message}: " + "; ".join(parts)
    if isinstance(detail, list) and detail:
        return f"{message}: " + "; ".join(map(str, detail))
    return message


# --- output ----------------------------------------------------------------------------------------


def table(rows: Sequence[Sequence[object]], headers: Sequence[str], out: TextIO) -> None:
    """A small aligned table; ``(none)`` when there are no rows."""
    if not rows:
        out.write("  (none)\n")
        return
    cells = [[_cell(v) for v in row] for row in rows]
    widths = [max(len(h), *(len(r[i]) for r in cells)) for i, h in enumerate(headers)]
    for line in [list(headers), *cells]:
        out.write("  ".join(c.ljust(w) for c, w in zip(line, widths, strict=True)).rstrip() + "\n")


def _cell(value: object) -> str:
    text = "-" if value is None or value == "" else str(value)
    text = " ".join(text.split())  # untrusted text stays on one line
    return text if len(text) <= 60 else text[:59] + "…"


def _when(value: str | None) -> str:
    return (value or "")[:16].replace("T", " ")


# --- commands --------------------------------------------------------------------------------------


def _all_pages(client: Client, path: str, params: dict[str, Any]) -> list[dict[str, Any]]:
    """Every row of a paginated list, following ``next_cursor``, up to MAX_ROWS (a terminal's worth)."""
    rows: list[dict[str, Any]] = []
    cursor = ""
    while len(rows) < MAX_ROWS:
        page = client.get(path, {**params, "limit": PAGE_LIMIT, "cursor": cursor})
        rows += page.get("results", [])
        cursor = page.get("next_cursor") or ""
        if not cursor:
            break
    return rows[:MAX_ROWS]


def cmd_status(client: Client, args: argparse.Namespace, out: TextIO) -> None:
    agents = client.get("/api/v1/agents")
    fleet = client.get("/api/v1/fleet")
    incidents = _all_pages(client, "/api/v1/incidents", {"open": "true"})
    alerts = _all_pages(client, "/api/v1/alerts", {"status": "open"})
    if args.json:
        json.dump({"fleet": fleet, "agents": agents, "incidents": incidents, "alerts": alerts}, out, indent=2)
        out.write("\n")
        return
    if fleet.get("stopped"):
        out.write(f"FLEET STOPPED: {fleet.get('stopped_reason') or 'no reason given'}\n\n")
    out.write(f"Agents ({len(agents)})\n")
    table([(a["slug"], a["state"], a.get("state_reason", "")) for a in agents], ["AGENT", "GATE", "REASON"], out)
    out.write(f"\nOpen incidents ({len(incidents)})\n")
    _incident_rows(incidents, out)
    out.write(f"\nOpen alerts ({len(alerts)})\n")
    _alert_rows(alerts, out)


def _incident_rows(incidents: list[dict[str, Any]], out: TextIO) -> None:
    table(
        [
            (i["ref"], i["severity"], i["status"], i.get("commander"), _when(i["declared_at"]), i["title"])
            for i in incidents
        ],
        ["INCIDENT", "SEV", "STATUS", "COMMANDER", "DECLARED", "TITLE"],
        out,
    )


def _alert_rows(alerts: list[dict[str, Any]], out: TextIO) -> None:
    table(
        [
            (a["id"], a.get("agent"), a["status"], a["detector"], a["count"], _when(a["last_seen"]), a["title"])
            for a in alerts
        ],
        ["ID", "AGENT", "STATUS", "DETECTOR", "COUNT", "LAST SEEN", "TITLE"],
        out,
    )


def _gate_command(action: str) -> Callable[[Client, argparse.Namespace, TextIO], None]:
    def run(client: Client, args: argparse.Namespace, out: TextIO) -> None:
        doc = client.post(
            f"/api/v1/agents/{quote(args.agent, safe='')}/{action}", {"reason": args.reason or ""}, agent=args.agent
        )
        if args.json:
            json.dump(doc, out, indent=2)
            out.write("\n")
            return
        out.write(
            f"{doc.get('agent', args.agent)}: {doc.get('state')}"
            + (f" ({doc['reason']})" if doc.get("reason") else "")
            + "\n"
        )

    return run


def cmd_declare(client: Client, args: argparse.Namespace, out: TextIO) -> None:
    body: dict[str, Any] = {"title": args.title, "severity": args.severity, "agents": args.agent or []}
    if args.failure_class:
        body["failure_class"] = args.failure_class
    incident = client.post("/api/v1/incidents", body)
    if args.json:
        json.dump(incident, out, indent=2)
        out.write("\n")
        return
    out.write(f"{incident['ref']} declared ({incident['severity']}): {incident['title']}\n{incident.get('url', '')}\n")


def cmd_incidents(client: Client, args: argparse.Namespace, out: TextIO) -> None:
    params = {"open": "true" if args.open else "", "status": args.status, "severity": args.severity}
    incidents = _all_pages(client, "/api/v1/incidents", params)
    if args.json:
        json.dump(incidents, out, indent=2)
        out.write("\n")
        return
    _incident_rows(incidents, out)


def cmd_alerts(client: Client, args: argparse.Namespace, out: TextIO) -> None:
    alerts = _all_pages(client, "/api/v1/alerts", {"agent": args.agent, "status": args.status})
    if args.json:
        json.dump(alerts, out, indent=2)
        out.write("\n")
        return
    _alert_rows(alerts, out)


# --- arguments -------------------------------------------------------------------------------------


def parser() -> argparse.ArgumentParser:
    common = argparse.ArgumentParser(add_help=False)
    common.add_argument("--json", action="store_true", default=argparse.SUPPRESS, help="print JSON, not a table")
    p = argparse.ArgumentParser(
        prog="firebreak",
        description="Firebreak from a terminal. Reads FIREBREAK_URL and FIREBREAK_API_KEY (a person's key).",
        epilog="exit codes: 0 done, 1 refused by Firebreak, 2 usage, 3 Firebreak unreachable or unavailable",
        parents=[common],
    )
    sub = p.add_subparsers(dest="command", required=True, metavar="COMMAND")
    s = sub.add_parser("status", parents=[common], help="agents with their gate, open incidents, open alerts")
    s.set_defaults(run=cmd_status)
    for action, needs_reason in (("kill", False), ("pause", False), ("resume", True)):
        s = sub.add_parser(action, parents=[common], help=f"{action} an agent")
        s.add_argument("agent", help="the agent's slug")
        s.add_argument("--reason", required=needs_reason, default="", help="why (required to resume)")
        s.set_defaults(run=_gate_command(action))
    s = sub.add_parser("declare", parents=[common], help="declare an incident")
    s.add_argument("title")
    s.add_argument("--severity", required=True, choices=SEVERITIES)
    s.add_argument("--agent", action="append", help="an agent's slug (repeat for more)")
    s.add_argument("--class", dest="failure_class", default="", help="a failure class slug")
    s.set_defaults(run=cmd_declare)
    s = sub.add_parser("incidents", parents=[common], help="list incidents, newest first")
    s.add_argument("--open", action="store_true", help="open ones only")
    s.add_argument("--status", default="")
    s.add_argument("--severity", default="", choices=("", *SEVERITIES))
    s.set_defaults(run=cmd_incidents)
    s = sub.add_parser("alerts", parents=[common], help="list alerts, newest first")
    s.add_argument("--agent", default="")
    s.add_argument("--status", default="", choices=("", "open", "acknowledged", "resolved"))
    s.set_defaults(run=cmd_alerts)
    return p


def _fail(message: str, code: int, err: TextIO) -> NoReturn:
    err.write(f"firebreak: {message}\n")
    raise SystemExit(code)


def main(argv: Sequence[str] | None = None, *, out: TextIO | None = None, err: TextIO | None = None) -> int:
    out, err = out or sys.stdout, err or sys.stderr
    args = parser().parse_args(argv)  # exits 2 on bad usage
    args.json = getattr(args, "json", False)
    url = os.environ.get("FIREBREAK_URL", "").strip()
    key = os.environ.get("FIREBREAK_API_KEY", "").strip()
    if not url:
        _fail("set FIREBREAK_URL to Firebreak's address, e.g. https://firebreak.example.com", EXIT_USAGE, err)
    if not key:
        _fail("set FIREBREAK_API_KEY to your API key (make one on Firebreak's /keys/ page)", EXIT_USAGE, err)
    if not url.startswith(("http://", "https://")):
        _fail(f"FIREBREAK_URL={url} is not an http:// or https:// address", EXIT_USAGE, err)
    try:
        args.run(Client(url, key), args, out)
    except CliError as exc:
        _fail(str(exc), exc.code, err)
    return EXIT_OK


if __name__ == "__main__":  # pragma: no cover
    sys.exit(main())
