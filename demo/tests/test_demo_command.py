from django.core.management import call_command

from traces.models import Trace


def test_if_empty_loads_nothing_when_traces_exist(make_agent, make_spans, ingest, capsys):
    make_agent("solo")
    ingest(make_spans(agent="solo", steps=[{"kind": "llm"}]))
    call_command("demo_fleet", "--if-empty")
    assert "nothing loaded" in capsys.readouterr().out
    assert Trace.objects.count() == 1
