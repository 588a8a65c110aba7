"""The header's links: one list, so a new page is one line here (the header renders it twice:
inline on wide screens, inside the menu button on narrow ones)."""

from dataclasses import dataclass

from django.http import HttpRequest
from django.urls import reverse

from core.roles import has_role


@dataclass(frozen=True, slots=True)
class NavItem:
    label: str
    url_name: str
    # Paths under these prefixes mark the link as the current page (default: its own URL, exactly for "/").
    prefixes: tuple[str, ...] = ()
    # Shown only to this role or higher (None: everyone who is logged in).
    role: str | None = None
    # Shown only to staff (the Django admin lets no one else in).
    staff: bool = False


NAV_ITEMS: list[NavItem] = [
    NavItem("Dashboard", "dashboard"),
    NavItem("Agents", "agents:agent-list"),
    NavItem("Traces", "traces:trace-list"),
    NavItem("Incidents", "incidents:incident-list"),
    NavItem("Alerts", "incidents:alert-list"),
    NavItem("Evals", "evals:case-list"),
    NavItem("Gamedays", "gamedays:gameday-list"),
    NavItem("Keys", "keys:key-list"),
    NavItem("API docs", "api-docs"),
    NavItem("Admin", "admin:index", role="admin", staff=True),
]


def nav_links(request: HttpRequest) -> list[dict[str, object]]:
    """The links this user sees, each with ``current`` for the page being shown (the longest match wins)."""
    user = getattr(request, "user", None)
    links = []
    for item in NAV_ITEMS:
        if item.role is not None and not has_role(user, item.role):
            continue
        if item.staff and not getattr(user, "is_staff", False):
            continue
        url = reverse(item.url_name)
        links.append({"label": item.label, "url": url, "prefixes": item.prefixes or (url,), "current": False})
    path = request.path
    best, best_len = None, -1
    for link in links:
        for prefix in link["prefixes"]:  # type: ignore[attr-defined]
            hit = path == prefix if prefix == "/" else path.startswith(prefix)
            if hit and len(prefix) > best_len:
                best, best_len = link, len(prefix)
    if best is not None:
        best["current"] = True
    return links


def nav_context(request: HttpRequest) -> dict[str, object]:
    if not getattr(getattr(request, "user", None), "is_authenticated", False):
        return {"nav_links": []}
    return {"nav_links": nav_links(request)}
