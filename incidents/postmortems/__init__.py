"""Post-mortems (PIR): started from a template made for agent failures, sections in Markdown,
attached traces shown as excerpts, action items tracked to closure, review and publish, the
Markdown export, and the metrics page (time to contain and resolve, recurrence, backlog)."""
