from django.template import Context, Template

from core.markdown import render_markdown


def test_markdown_renders_and_strips_scripts_and_handlers():
    html = render_markdown("**bold** <script>alert(1)</script> <img src=x onerror=alert(1)> [x](javascript:alert(1))")
    assert "<strong>bold</strong>" in html
    assert "<script" not in html
    assert "onerror" not in html
    assert "javascript:" not in html


def test_links_keep_http_and_get_safe_rel():
    html = render_markdown("[runbook](https://example.com/rb)")
    assert 'href="https://example.com/rb"' in html
    assert "noopener" in html


def test_template_filter():
    out = Template("{% load firebreak_tags %}{{ text|markdown }}").render(
        Context({"text": '# Title\n\n<div onclick="x()">y</div>'})
    )
    assert "<h1>Title</h1>" in out
    assert "onclick" not in out and "<div" not in out
