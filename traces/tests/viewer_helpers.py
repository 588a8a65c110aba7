"""Helpers for reading the viewer's HTML in tests."""

import re

from django.urls import reverse

HX = {"HX-Request": "true"}
SCRIPT = "<script>window.__xss=1</script>"
IMG = '<img src=x onerror="window.__xss=1">'


def detail(trace_id: str) -> str:
    return reverse("traces:trace-detail", args=[trace_id])


def step_ids(html: str) -> list[str]:
    return re.findall(r'<li id="step-([0-9a-f]+)"', html)


def positions(response) -> list[int]:
    """Positions of the steps in a page or fragment, as rendered (fragments carry no test context)."""
    return [int(p) for p in re.findall(r'data-pos="(\d+)"', response.content.decode())]


def alternating(n: int) -> list[dict]:
    """n steps: an LLM call, then a tool call with distinct arguments, and so on."""
    return [
        {"kind": "llm", "output": f"thinking {i}"}
        if i % 2 == 0
        else {"kind": "tool", "tool": "search", "args": {"q": i}}
        for i in range(n)
    ]


def assert_inert(html: str) -> None:
    assert "<script>window" not in html
    assert "<img src=x" not in html
    assert 'onerror="window' not in html
