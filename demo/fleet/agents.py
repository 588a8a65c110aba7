"""The demo agents: what each one is allowed to do, its model and caps, and what its models cost."""

from dataclasses import dataclass
from decimal import Decimal

# USD per million tokens, (input, output).
MODEL_PRICES = {
    "gpt-4o-2024-08-06": (Decimal("2.50"), Decimal("10.00")),
    "gpt-4o-mini-2024-07-18": (Decimal("0.15"), Decimal("0.60")),
    "claude-3-5-sonnet-20241022": (Decimal("3.00"), Decimal("15.00")),
    "claude-3-5-haiku-20241022": (Decimal("0.80"), Decimal("4.00")),
    "gemini-1.5-pro-002": (Decimal("1.25"), Decimal("5.00")),
}
_SYSTEMS = {"gpt": "openai", "claude": "anthropic", "gemini": "gcp.gemini"}


@dataclass(frozen=True)
class AgentSpec:
    slug: str
    name: str
    owner: str
    description: str
    allowed_tools: tuple[str, ...]
    high_risk_tools: tuple[str, ...]
    model_version: str
    prompt_version: str
    session_cost_cap: Decimal
    daily_cost_cap: Decimal
    session_token_cap: int
    session_step_cap: int

    def register_kwargs(self) -> dict:
        """Keyword arguments for ``agents.services.agent_register``."""
        return {
            "slug": self.slug,
            "name": self.name,
            "owner": self.owner,
            "description": self.description,
            "allowed_tools": list(self.allowed_tools),
            "high_risk_tools": list(self.high_risk_tools),
            "model_version": self.model_version,
            "prompt_version": self.prompt_version,
            "session_cost_cap": self.session_cost_cap,
            "daily_cost_cap": self.daily_cost_cap,
            "session_token_cap": self.session_token_cap,
            "session_step_cap": self.session_step_cap,
        }


def _spec(slug, name, owner, description, tools, high_risk, model, prompt, caps) -> AgentSpec:
    session_cost, daily_cost, tokens, steps = caps
    tools, high_risk = tuple(tools.split()), tuple(high_risk.split())
    caps = (Decimal(session_cost), Decimal(daily_cost), tokens, steps)
    return AgentSpec(slug, name, owner, description, tools, high_risk, model, prompt, *caps)


# fmt: off
AGENTS = [
    _spec("support-triage", "Support triage", "Customer Support Platform",
          "First line of customer support: classifies the request, looks up orders and accounts, answers or escalates.",
          "lookup_order lookup_customer create_ticket escalate_to_human send_email", "send_email",
          "claude-3-5-sonnet-20241022", "support-triage@v14", ("0.50", "150", 60_000, 80)),
    _spec("refund-agent", "Refund agent", "Payments Operations",
          "Checks refund eligibility against policy and issues refunds up to the policy limit.",
          "lookup_order lookup_customer check_refund_policy issue_refund update_customer_record send_email",
          "issue_refund update_customer_record", "gpt-4o-2024-08-06", "refunds@v9", ("0.40", "60", 40_000, 30)),
    _spec("sql-analyst", "SQL analyst", "Data Platform",
          "Answers business questions with read-only SQL over the analytics warehouse.",
          "list_tables describe_table run_sql_readonly render_chart export_csv", "export_csv",
          "gpt-4o-2024-08-06", "sql-analyst@v6", ("1.00", "40", 80_000, 40)),
    _spec("code-reviewer", "Code reviewer", "Developer Experience",
          "Reviews pull requests: reads the diff, runs the linter, comments; approves dependency bumps only.",
          "fetch_pull_request get_file_contents run_linter post_review_comment approve_pull_request",
          "approve_pull_request", "claude-3-5-sonnet-20241022", "code-review@v21", ("1.50", "80", 120_000, 40)),
    _spec("research-assistant", "Research assistant", "Strategy & Insights",
          "Searches the web and internal docs and writes sourced briefs.",
          "web_search fetch_url search_internal_docs save_note", "",
          "gpt-4o-2024-08-06", "research@v4", ("2.00", "50", 150_000, 50)),
    _spec("invoice-extractor", "Invoice extractor", "Finance Automation",
          "Reads supplier invoices, receipts and credit notes and books them as draft invoices.",
          "fetch_document ocr_extract lookup_vendor validate_tax_id create_invoice", "create_invoice",
          "gemini-1.5-pro-002", "invoice-extract@v12", ("0.25", "30", 50_000, 20)),
    _spec("planner", "Ops planner", "Platform Operations",
          "Turns operations requests into plans from the runbooks and hands them to the executor.",
          "lookup_runbook create_plan handoff", "", "gpt-4o-2024-08-06", "ops-planner@v3",
          ("0.50", "20", 40_000, 30)),
    _spec("executor", "Ops executor", "Platform Operations",
          "Carries out plans from the planner in the sandbox and on the cluster, then reports back.",
          "handoff run_command_sandboxed restart_service scale_deployment update_ticket",
          "restart_service scale_deployment", "gpt-4o-mini-2024-07-18", "ops-executor@v3",
          ("0.20", "10", 40_000, 30)),
    _spec("onboarding-guide", "Onboarding guide", "Growth",
          "Walks new customers through setup: checklist, integration docs, calls with a solutions engineer.",
          "lookup_customer get_onboarding_checklist schedule_call send_email", "send_email",
          "claude-3-5-haiku-20241022", "onboarding@v8", ("0.10", "15", 20_000, 20)),
]
# fmt: on
AGENTS_BY_SLUG = {a.slug: a for a in AGENTS}
