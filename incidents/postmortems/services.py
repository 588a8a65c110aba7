"""Writes for post-mortems: start from a template, write sections, attach traces, action items, review and publish.

Every service is keyword-only and atomic: it validates first and raises ValidationError
(nothing written) on bad input. Starting, sending to review, sending back and publishing
put a "postmortem" entry on the incident's timeline.
"""

import hashlib
from collections.abc import Mapping
from datetime import date
from typing import TypedDict

from django.contrib.auth.models import User
from django.core.exceptions import ValidationError
from django.db import transaction

from core import clock
from core.actors import Actor
from incidents.models import (
    ActionItem,
    Incident,
    PostMortem,
    PostMortemTemplate,
    TimelineKind,
)
from incidents.postmortems.selectors import postmortem_empty_sections
from incidents.selectors import POSTMORTEM_DUE_AFTER
from incidents.services import timeline_record
from traces.models import Trace

SECTION_BODY_MAX = 50_000
ACTION_TITLE_MAX = 300

# Draft -> in review -> published; a review can send it back to draft. Published is final.
TRANSITIONS: dict[str, set[str]] = {
    PostMortem.Status.DRAFT: {PostMortem.Status.IN_REVIEW},
    PostMortem.Status.IN_REVIEW: {PostMortem.Status.DRAFT, PostMortem.Status.PUBLISHED},
    PostMortem.Status.PUBLISHED: set(),
}
# What the timeline says when the post-mortem reaches a status.
STATUS_VERBS: dict[str, str] = {
    PostMortem.Status.IN_REVIEW: "sent to review",
    PostMortem.Status.DRAFT: "sent back to draft",
    PostMortem.Status.PUBLISHED: "published",
}


class Section(TypedDict):
    """One section of PostMortem.sections, copied from the template with an empty body."""

    key: str
    title: str
    prompt: str
    body: str


def _locked(postmortem: PostMortem) -> PostMortem:
    return PostMortem.objects.select_for_update().select_related("incident").get(pk=postmortem.pk)


def _sections_from_template(template: PostMortemTemplate) -> list[Section]:
    raw = template.sections
    if not isinstance(raw, list) or not raw:
        raise ValidationError(f"The template “{template.name}” has no sections.")
    sections: list[Section] = []
    keys: set[str] = set()
    for section in raw:
        key = str(section.get("key", "")).strip() if isinstance(section, dict) else ""
        title = str(section.get("title", "")).strip() if isinstance(section, dict) else ""
        if not key or not title:
            raise ValidationError(f"The template “{template.name}” has a section without a key or title.")
        if key in keys:
            raise ValidationError(f"The template “{template.name}” repeats the section key “{key}”.")
        keys.add(key)
        sections.append({"key": key, "title": title, "prompt": str(section.get("prompt", "") or ""), "body": ""})
    return sections


def _editable(postmortem: PostMortem) -> None:
    if postmortem.status == PostMortem.Status.PUBLISHED:
        raise ValidationError("This post-mortem is published; it can no longer be edited.")


@transaction.atomic
def postmortem_start(*, incident: Incident, template: PostMortemTemplate | None, actor: Actor) -> PostMortem:
    """Start the incident's post-mortem from ``template``.

    Copies the template's sections (with empty bodies), sets the author and, for SEV1,
    ``due_at`` = declaration + 48 h; attaches every trace linked to the incident and puts
    a timeline entry on the incident. Raises ValidationError when the incident already has
    a post-mortem, ``template`` is None or has no usable sections.
    """
    locked = Incident.objects.select_for_update().get(pk=incident.pk)
    if PostMortem.objects.filter(incident=locked).exists():
        raise ValidationError(f"{locked.ref} already has a post-mortem.")
    if template is None:
        raise ValidationError("Choose a template.")
    sections = _sections_from_template(template)
    due_after = POSTMORTEM_DUE_AFTER.get(locked.severity)
    postmortem = PostMortem.objects.create(
        incident=locked,
        template=template,
        sections=sections,
        author=actor.user,
        due_at=locked.declared_at + due_after if due_after else None,
    )
    traces = list(locked.traces.all())
    if traces:
        postmortem.attached_traces.add(*traces)
    timeline_record(
        incident=locked,
        kind=TimelineKind.POSTMORTEM,
        body=f"Post-mortem started from the template “{template.name}”.",
        actor=actor,
        data={"action": "start", "template": template.slug, "postmortem": postmortem.pk},
    )
    return postmortem


def postmortem_body_normalize(body: str | None) -> str:
    """A section body as stored: browsers post textareas with CRLF line ends, stored with LF."""
    return (body or "").replace("\r\n", "\n")


def postmortem_body_hash(body: str | None) -> str:
    """The fingerprint the editor carries for each section as it was loaded (see postmortem_sections_save)."""
    return hashlib.sha256(postmortem_body_normalize(body).encode()).hexdigest()


@transaction.atomic
def postmortem_sections_save(
    *,
    postmortem: PostMortem,
    bodies: Mapping[str, str],
    loaded: Mapping[str, str] | None = None,
    actor: Actor,
) -> list[str]:
    """Write the bodies of several sections (Markdown, stored as written) in one transaction and one row update.

    ``bodies`` maps section keys to their new body; sections not named keep theirs. ``loaded`` maps
    section keys to ``postmortem_body_hash`` of the body the editor showed when it was loaded (or last
    saved): a section whose posted body still hashes the same was not touched by this writer and is
    left as stored, so a section someone else saved in the meantime is not overwritten with the stale
    text. Touched sections are written whatever is stored (last write wins, per section).

    Everything is validated before anything is written: raises ValidationError keyed by section key
    (an unknown section, a body over SECTION_BODY_MAX characters), or a plain one for a published
    post-mortem; then nothing is written. Returns the keys whose stored body changed (maybe none);
    ``postmortem`` carries the stored sections afterwards.
    """
    loaded = loaded or {}
    normalized = {key: postmortem_body_normalize(body) for key, body in bodies.items()}
    locked = _locked(postmortem)
    _editable(locked)
    known = {s.get("key") for s in locked.sections}
    errors: dict[str, str] = {}
    for key, body in normalized.items():
        if key not in known:
            errors[key] = f"This post-mortem has no section “{key}”."
        elif len(body) > SECTION_BODY_MAX:
            errors[key] = f"A section holds at most {SECTION_BODY_MAX:,} characters (this one has {len(body):,})."
    if errors:
        raise ValidationError(errors)
    sections = [dict(s) for s in locked.sections]
    written: list[str] = []
    for section in sections:
        key = str(section.get("key"))
        if key not in normalized:
            continue
        new_body = normalized[key]
        if key in loaded and loaded[key] == postmortem_body_hash(new_body):
            continue  # untouched here: keep what is stored, whoever wrote it
        if section.get("body", "") != new_body:
            section["body"] = new_body
            written.append(key)
    if written:
        locked.sections = sections
        locked.save(update_fields=["sections", "updated_at"])
    postmortem.sections, postmortem.updated_at = locked.sections, locked.updated_at
    return written


def postmortem_section_save(*, postmortem: PostMortem, key: str, body: str, actor: Actor) -> PostMortem:
    """Replace the body of one section: ``postmortem_sections_save`` for one key (same errors, one message)."""
    try:
        postmortem_sections_save(postmortem=postmortem, bodies={key: body}, actor=actor)
    except ValidationError as error:
        raise ValidationError(error.messages) from error
    return postmortem


@transaction.atomic
def postmortem_trace_attach(*, postmortem: PostMortem, trace: Trace | None, actor: Actor) -> PostMortem:
    """Attach ``trace`` (attaching twice is a no-op). Raises ValidationError when published or ``trace`` is None."""
    locked = _locked(postmortem)
    _editable(locked)
    if trace is None:
        raise ValidationError("No such trace.")
    locked.attached_traces.add(trace)
    return postmortem


@transaction.atomic
def postmortem_trace_detach(*, postmortem: PostMortem, trace: Trace, actor: Actor) -> PostMortem:
    """Detach ``trace`` (a trace not attached is a no-op). Raises ValidationError when published."""
    locked = _locked(postmortem)
    _editable(locked)
    locked.attached_traces.remove(trace)
    return postmortem


@transaction.atomic
def action_item_add(
    *,
    postmortem: PostMortem,
    title: str,
    kind: str,
    owner: User | None = None,
    due_date: date | None = None,
    actor: Actor,
) -> ActionItem:
    """Add an open action item. Allowed after publishing too: action items are tracked to closure.

    Raises ValidationError for an empty or too long title, an unknown kind, or a due date
    that is not a date.
    """
    title = " ".join((title or "").split())
    errors: dict[str, str] = {}
    if not title:
        errors["title"] = "Say what will be done."
    elif len(title) > ACTION_TITLE_MAX:
        errors["title"] = f"At most {ACTION_TITLE_MAX} characters."
    if kind not in ActionItem.Kind.values:
        errors["kind"] = f"Unknown kind “{kind}”; one of: {', '.join(ActionItem.Kind.values)}."
    if due_date is not None and not isinstance(due_date, date):
        errors["due_date"] = "Not a date."
    if errors:
        raise ValidationError(errors)
    locked = _locked(postmortem)
    return ActionItem.objects.create(postmortem=locked, title=title, kind=kind, owner=owner, due_date=due_date)


@transaction.atomic
def action_item_status_set(*, item: ActionItem, status: str, actor: Actor) -> ActionItem:
    """Set the item's status; "done" stamps ``done_at``, any other status clears it.

    Raises ValidationError for an unknown status.
    """
    if status not in ActionItem.Status.values:
        raise ValidationError(f"Unknown status “{status}”; one of: {', '.join(ActionItem.Status.values)}.")
    locked = ActionItem.objects.select_for_update().get(pk=item.pk)
    if locked.status != status:
        locked.status = status
        locked.done_at = clock.now() if status == ActionItem.Status.DONE else None
        locked.save(update_fields=["status", "done_at"])
    item.status, item.done_at = locked.status, locked.done_at
    return item


@transaction.atomic
def postmortem_status_set(*, postmortem: PostMortem, status: str, actor: Actor) -> PostMortem:
    """Move the post-mortem along draft -> in review -> published (review may send it back to draft).

    Publishing needs every section written and stamps ``published_at``. Each change puts a
    timeline entry on the incident. Raises ValidationError for an unknown status, a move
    the lifecycle does not allow, or (publishing) empty sections, naming them.
    """
    if status not in PostMortem.Status.values:
        raise ValidationError(f"Unknown status “{status}”.")
    locked = _locked(postmortem)
    if status == locked.status:
        return postmortem
    if status not in TRANSITIONS[locked.status]:
        raise ValidationError(
            f"A post-mortem cannot go from {locked.get_status_display().lower()} "
            f"to {PostMortem.Status(status).label.lower()}."
        )
    if status == PostMortem.Status.PUBLISHED:
        if locked.incident.failure_class_id is None:
            raise ValidationError("Set the incident's failure class before publishing: it is not yet classified.")
        empty = postmortem_empty_sections(locked)
        if empty:
            raise ValidationError(f"Write every section before publishing. Empty: {'; '.join(empty)}.")
        locked.published_at = clock.now()
    previous = locked.status
    locked.status = status
    locked.save(update_fields=["status", "published_at", "updated_at"])
    verb = STATUS_VERBS[status]
    timeline_record(
        incident=locked.incident,
        kind=TimelineKind.POSTMORTEM,
        body=f"Post-mortem {verb}.",
        actor=actor,
        data={"action": status, "from": previous, "postmortem": locked.pk},
    )
    postmortem.status, postmortem.published_at, postmortem.updated_at = (
        locked.status,
        locked.published_at,
        locked.updated_at,
    )
    return postmortem
