"""Values stored apart (over 64 KiB) where other apps read a run: eval capture and the post-mortem excerpt."""

import json

import pytest

from agents.keys.services import api_key_create
from core.actors import Actor
from evals.services import eval_case_capture
from incidents.postmortems.selectors import trace_excerpt
from traces.ingest.payloads import PREVIEW_CHARS
from traces.models import Trace
from traces.tests.test_ingest_api import batch, span
from traces.tests.test_payloads import NATIVE, big_text, post


@pytest.fixture
def key(make_agent):
    return api_key_create(agent=make_agent("support"), scopes=["ingest"])[1]


def test_an_eval_captured_from_a_run_takes_its_whole_input_not_the_preview(key, responder):
    text = big_text(90_000)  # over 64 KiB (stored apart), under the eval case's 100,000 characters
    assert post(NATIVE, json.dumps(batch(span(input=text))), key).status_code == 200
    trace = Trace.objects.get()
    assert len(trace.root_input) == PREVIEW_CHARS
    case = eval_case_capture(trace=trace, expected_behaviour="Answer once.", actor=Actor.person(responder))
    assert case.input == text.strip()


def test_the_postmortem_excerpt_says_the_output_is_stored_apart_and_its_size(key):
    output = big_text(100 * 1024)
    tool = span(span_id="c" * 16, parent_span_id="b" * 16, kind="tool", tool_name="read_file", output=output)
    assert post(NATIVE, json.dumps(batch(span(), tool)), key).status_code == 200
    (step,) = [s for s in trace_excerpt(trace=Trace.objects.get()).steps if s.span_id == "c" * 16]
    assert step.output_apart == len(output.encode())
