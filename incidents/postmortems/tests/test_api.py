"""POST /api/v1/incidents/<number>/postmortem/sections: the editor's save, over the API."""

from core.actors import Actor
from incidents.models import PostMortem
from incidents.postmortems import services

URL = "/api/v1/incidents/7/postmortem/sections"


def test_api_saves_several_sections_and_answers_their_hashes(postmortem, responder, make_client):
    c = make_client(responder)
    response = c.post(URL, {"sections": {"what": "It refunded.", "why": "A prompt."}}, content_type="application/json")
    assert response.status_code == 200, response.content
    body = response.json()
    assert body["written"] == ["what", "why"]
    assert body["publishable"] is False and "Why did it do it?" not in body["empty_sections"]
    hashes = {s["key"]: s["hash"] for s in body["sections"]}
    assert hashes["what"] == services.postmortem_body_hash("It refunded.")

    # an untouched section (its loaded hash still matches) is not written over someone else's save
    services.postmortem_section_save(postmortem=postmortem, key="why", body="Theirs.", actor=Actor.person(responder))
    again = c.post(
        URL,
        {"sections": {"what": "It refunded 950.", "why": "A prompt."}, "loaded": hashes},
        content_type="application/json",
    ).json()
    assert again["written"] == ["what"]
    pm = PostMortem.objects.get(pk=postmortem.pk)
    assert {s["key"]: s["body"] for s in pm.sections}["why"] == "Theirs."


def test_api_refuses_a_bad_section_and_writes_nothing(postmortem, responder, viewer, make_client):
    huge = "x" * (services.SECTION_BODY_MAX + 1)
    response = make_client(responder).post(
        URL, {"sections": {"what": "Fine.", "why": huge}}, content_type="application/json"
    )
    assert response.status_code == 400
    assert "why" in response.json()["detail"]
    assert (
        make_client(viewer).post(URL, {"sections": {"what": "x"}}, content_type="application/json").status_code == 403
    )
    pm = PostMortem.objects.get(pk=postmortem.pk)
    assert all(s["body"] == "" for s in pm.sections)
