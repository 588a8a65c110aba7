"""Recording a blast radius run on the incident's timeline."""

from core.actors import Actor
from incidents.blast_radius.services import blast_radius_record
from incidents.blast_radius.signature import BlastSignature
from incidents.blast_radius.tests.conftest import WINDOW
from incidents.models import TimelineEntry, TimelineKind


def test_record_saves_one_timeline_entry(world, responder):
    incident, _ = world
    _result, entry = blast_radius_record(
        incident=incident, signature=BlastSignature(tool="issue_refund"), actor=Actor.person(responder), **WINDOW
    )
    assert TimelineEntry.objects.filter(incident=incident, kind=TimelineKind.BLAST_RADIUS).count() == 1
    assert entry.body.startswith("Blast radius: 4 trajectories, 3 users, 2 still running — signature tool issue_refund")
    assert entry.data["trajectories"] == 4
    assert entry.data["users"] == 3
    assert entry.data["still_running"] == 2
    assert entry.data["signature"]["tool"] == "issue_refund"
    assert entry.data["window"] == {"since": WINDOW["since"].isoformat(), "until": WINDOW["until"].isoformat()}
    assert len(entry.data["user_ids"]) == 3
    assert entry.data["computed_at"]
    assert entry.actor == responder
