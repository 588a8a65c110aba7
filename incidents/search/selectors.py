"""Reads for the one search box (``/search/?q=``): incidents, post-mortems, alerts and traces.

PostgreSQL full-text search (``websearch_to_tsquery``), ranked, at most ``per_group`` rows per kind.
Traces are searched on their own row (root input and output, ids, agent), never on step text: the
steps table is the largest in the database. Highlights come back as parts (text, matched) that the
template prints autoescaped: the headline's markers never reach the page as HTML.
"""

import re
from dataclasses import dataclass, field

from django.contrib.postgres.search import SearchHeadline, SearchQuery, SearchRank, SearchVector
from django.db import DatabaseError, connection, transaction
from django.db.models import Expression, F, Func, TextField, Value
from django.db.models.functions import Cast, Left
from django.urls import reverse

from agents.models import Agent
from incidents.models import Alert, Incident, PostMortem, TimelineEntry
from traces.models import Trace

MAX_QUERY = 200  # characters of q; a longer one is refused with a message
PER_GROUP = 10
TEXT_PREFIX = 20_000  # characters of a long text that are searched and highlighted
STATEMENT_TIMEOUT_MS = 3000
CONFIG = "english"
# Private-use characters as the headline's markers: split on, never printed as HTML.
START, STOP = "\ue000", "\ue001"
INCIDENT_REF = re.compile(r"^(?:#|inc-?)?(\d{1,9})$", re.IGNORECASE)


class SearchError(ValueError):
    """The query cannot be searched; the message says why, for the person who typed it."""


@dataclass(frozen=True)
class Hit:
    title: str
    url: str
    parts: list[tuple[str, bool]] = field(default_factory=list)  # the snippet: (text, matched)
    meta: str = ""


@dataclass(frozen=True)
class Group:
    kind: str
    label: str
    hits: list[Hit]
    more: bool  # more than the hits shown matched


@dataclass(frozen=True)
class SearchResult:
    query: str
    exact: list[Hit]
    groups: list[Group]
    redirect: str | None = None  # where an exact id match goes straight

    @property
    def total(self) -> int:
        return len(self.exact) + sum(len(g.hits) for g in self.groups)


# Markdown's marks in a snippet of Markdown text (post-mortems, summaries, notes): a snippet is a
# few words cut anywhere, so it is shown as plain words, not rendered. Links keep their text.
_MD_LINK = re.compile(r"\[([^\]]*)\]\([^)]*\)")
_MD_MARKS = re.compile(r"`+|\*\*|__|(?m:^\s{0,3}#{1,6}\s+)|(?m:^\s{0,3}[*+-]\s+)|(?m:^\s{0,3}>\s?)")


def _plain(chunk: str) -> str:
    return _MD_MARKS.sub("", _MD_LINK.sub(r"\1", chunk))


def headline_parts(text: str | None, *, markdown: bool = False) -> list[tuple[str, bool]]:
    """Split a headline with START/STOP markers into (text, matched) parts; stray markers vanish.

    ``markdown``: the text is Markdown source, whose marks (code ticks, bold, headings, list marks,
    link targets) are dropped from the snippet. Trace text is never Markdown: it is shown as it came.
    """
    parts: list[tuple[str, bool]] = []
    for i, chunk in enumerate(re.split(f"[{START}{STOP}]", text or "")):
        if markdown:
            chunk = _plain(chunk)
        if chunk:
            parts.append((chunk, i % 2 == 1))
    return parts


def clean_query(raw: str) -> str:
    """The query to search, stripped; raises SearchError for one that is too long or holds a NUL."""
    q = raw.strip()
    if "\x00" in q:
        raise SearchError("The search holds a NUL character; remove it and search again.")
    if len(q) > MAX_QUERY:
        raise SearchError(f"The search is {len(q)} characters long; at most {MAX_QUERY} are searched.")
    return q


def _exact(q: str) -> list[Hit]:
    hits: list[Hit] = []
    m = INCIDENT_REF.match(q)
    if m:
        incident = Incident.objects.filter(number=int(m.group(1))).first()
        if incident is not None:
            hits.append(Hit(title=f"{incident.ref} {incident.title}", url=_incident_url(incident), meta="incident"))
    if len(q) <= 32:
        for trace in Trace.objects.select_related("agent").filter(trace_id=q).order_by("started_at", "id")[:PER_GROUP]:
            hits.append(Hit(title=f"Trace {trace.trace_id}", url=trace.get_absolute_url(), meta=trace.agent.slug))
    agent = Agent.objects.filter(slug=q).first()
    if agent is not None:
        hits.append(Hit(title=f"Agent {agent.slug}", url=_url("agents:agent-detail", agent.slug), meta="agent"))
    if Trace.objects.filter(session_id=q).exists():
        hits.append(Hit(title=f"Session {q}", url=_url("traces:session-detail", q), meta="session"))
    if Trace.objects.filter(user_id=q).exists():
        hits.append(Hit(title=f"User {q}", url=_url("traces:user-detail", q), meta="user"))
    return hits


def _headline(expression: str | Expression, query: SearchQuery) -> SearchHeadline:
    return SearchHeadline(
        expression, query, config=CONFIG, start_sel=START, stop_sel=STOP, max_words=25, min_words=8, max_fragments=2
    )


def _url(name: str, *args: object) -> str:
    return reverse(name, args=args)


def _incident_url(incident: Incident) -> str:
    return _url("incidents:incident-detail", incident.number)


def _incidents(query: SearchQuery, limit: int) -> tuple[list[Hit], bool]:
    vector = SearchVector("title", weight="A", config=CONFIG) + SearchVector(
        Left("summary", TEXT_PREFIX), weight="B", config=CONFIG
    )
    rows = list(
        Incident.objects.annotate(rank=SearchRank(vector, query))
        .filter(rank__gt=0)
        .annotate(snippet=_headline(Left("summary", TEXT_PREFIX), query))
        .order_by("-rank", "-number")[: limit + 1]
    )
    hits = {
        i.number: Hit(
            title=f"{i.ref} {i.title}",
            url=_incident_url(i),
            parts=headline_parts(i.snippet, markdown=True),
            meta=i.status,
        )
        for i in rows[:limit]
    }
    # Timeline notes: each matching note names its incident once.
    entries = (
        TimelineEntry.objects.select_related("incident")
        .annotate(rank=SearchRank(SearchVector(Left("body", TEXT_PREFIX), config=CONFIG), query))
        .filter(rank__gt=0)
        .annotate(snippet=_headline(Left("body", TEXT_PREFIX), query))
        .order_by("-rank", "-created_at")[: limit * 2]
    )
    more = len(rows) > limit
    for entry in entries:
        i = entry.incident
        if i.number in hits:
            continue
        if len(hits) >= limit:
            more = True
            break
        hits[i.number] = Hit(
            title=f"{i.ref} {i.title}",
            url=_incident_url(i),
            parts=headline_parts(entry.snippet, markdown=True),
            meta="timeline note",
        )
    return list(hits.values()), more


def _postmortems(query: SearchQuery, limit: int) -> tuple[list[Hit], bool]:
    # The sections' titles and bodies as one text (the JSON's keys and prompts left out).
    text = Left(
        Cast(Func(F("sections"), Value("$[*].body"), function="jsonb_path_query_array"), TextField()), TEXT_PREFIX
    )
    rows = list(
        PostMortem.objects.select_related("incident")
        .annotate(rank=SearchRank(SearchVector(text, config=CONFIG), query))
        .filter(rank__gt=0)
        .annotate(snippet=_headline(text, query))
        .order_by("-rank", "-updated_at")[: limit + 1]
    )
    hits = [
        Hit(
            title=f"Post-mortem of {p.incident.ref} {p.incident.title}",
            url=_url("incidents:postmortem", p.incident.number),
            parts=headline_parts(p.snippet, markdown=True),
            meta=p.status,
        )
        for p in rows[:limit]
    ]
    return hits, len(rows) > limit


def _alerts(query: SearchQuery, limit: int) -> tuple[list[Hit], bool]:
    rows = list(
        Alert.objects.select_related("agent")
        .annotate(rank=SearchRank(SearchVector("title", config=CONFIG), query))
        .filter(rank__gt=0)
        .annotate(snippet=_headline("title", query))
        .order_by("-rank", "-last_seen")[: limit + 1]
    )
    list_url = _url("incidents:alert-list")
    hits = [
        Hit(
            title=a.title,
            url=a.trace.get_absolute_url()
            if a.trace_id and a.trace
            else f"{list_url}?agent={a.agent.slug}"
            if a.agent is not None
            else f"{list_url}?detector={a.detector}",
            parts=headline_parts(a.snippet),
            meta=f"{a.agent.slug if a.agent is not None else a.get_source_display()} · {a.status}",
        )
        for a in rows[:limit]
    ]
    return hits, len(rows) > limit


def _traces(query: SearchQuery, limit: int) -> tuple[list[Hit], bool]:
    vector = (
        SearchVector("trace_id", "session_id", "user_id", "agent__slug", weight="A", config=CONFIG)
        + SearchVector(Left("root_input", TEXT_PREFIX), weight="B", config=CONFIG)
        + SearchVector(Left("root_output", TEXT_PREFIX), weight="C", config=CONFIG)
    )
    rows = list(
        Trace.objects.select_related("agent")
        .annotate(rank=SearchRank(vector, query))
        .filter(rank__gt=0)
        .annotate(
            snippet_in=_headline(Left("root_input", TEXT_PREFIX), query),
            snippet_out=_headline(Left("root_output", TEXT_PREFIX), query),
        )
        .order_by("-rank", "-started_at", "-id")[: limit + 1]
    )
    hits = []
    for t in rows[:limit]:
        parts = headline_parts(t.snippet_in)
        if not any(matched for _, matched in parts):
            out = headline_parts(t.snippet_out)
            if any(matched for _, matched in out):
                parts = out
        hits.append(
            Hit(
                title=f"{t.agent.slug} · {t.trace_id}",
                url=t.get_absolute_url(),
                parts=parts,
                meta=" · ".join(x for x in (t.status, t.session_id and f"session {t.session_id}") if x),
            )
        )
    return hits, len(rows) > limit


def search(*, q: str, per_group: int = PER_GROUP) -> SearchResult:
    """Search every kind for ``q`` (already through ``clean_query``), exact id matches first.

    ``redirect`` is set when ``q`` names exactly one incident or one trajectory. Raises SearchError when
    PostgreSQL gives up within the statement timeout (a query too broad for the database's size).
    """
    if not q:
        return SearchResult(query=q, exact=[], groups=[])
    exact = _exact(q)
    if len(exact) == 1 and exact[0].meta not in ("session", "user", "agent"):
        return SearchResult(query=q, exact=exact, groups=[], redirect=exact[0].url)
    query = SearchQuery(q, search_type="websearch", config=CONFIG)
    kinds = (
        ("incidents", "Incidents", _incidents),
        ("postmortems", "Post-mortems", _postmortems),
        ("alerts", "Alerts", _alerts),
        ("traces", "Traces", _traces),
    )
    groups = []
    try:
        with transaction.atomic(), connection.cursor() as cursor:
            cursor.execute(f"SET LOCAL statement_timeout = {STATEMENT_TIMEOUT_MS}")
            for kind, label, find in kinds:
                hits, more = find(query, per_group)
                groups.append(Group(kind=kind, label=label, hits=hits, more=more))
    except DatabaseError as exc:
        raise SearchError("The search took too long; add words or an id to narrow it.") from exc
    return SearchResult(query=q, exact=exact, groups=groups)


def user_links(user_id: str) -> list[tuple[str, str, str]]:
    """(kind, title, url) of the incidents and alerts linked to a user's traces, newest first, at most
    PER_GROUP of each: what /traces/users/<id>/ lists (filled into ``traces.hooks.user_links``)."""
    links: list[tuple[str, str, str]] = []
    incidents = Incident.objects.filter(traces__user_id=user_id).distinct().order_by("-number")[:PER_GROUP]
    for i in incidents:
        links.append(("incident", f"{i.ref} {i.title}", _incident_url(i)))
    alerts = Alert.objects.select_related("agent", "trace").filter(trace__user_id=user_id).order_by("-last_seen")
    for a in alerts[:PER_GROUP]:
        url = a.trace.get_absolute_url() if a.trace else _url("incidents:alert-list")
        links.append(("alert", a.title, url))
    return links
