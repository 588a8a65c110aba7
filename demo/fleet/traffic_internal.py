"""Healthy traffic of the internal agents: analytics, code review, research, invoices and operations."""

import json

from demo.fleet.content import _REPOS, _SENTENCES, _SERVICES, _Content, _pick
from demo.fleet.runs import _Run, _Trace


class _InternalTraffic(_Content):
    """Scenario builders for sql-analyst, code-reviewer, research-assistant, invoice-extractor, planner/executor."""

    def sql_analyst(self, user: str) -> _Trace:
        r, run = self.rng, _Run(self.rng, "sql-analyst")
        cls = _pick(r, {"revenue-report": 35, "cohort-analysis": 20, "adhoc-query": 35, "metric-definition": 10})
        weeks = r.randint(4, 12)
        question = {
            "revenue-report": f"Weekly revenue by region for the last {weeks} weeks, please.",
            "cohort-analysis": "Monthly retention of the users who signed up in March, by plan.",
            "adhoc-query": r.choice(
                [
                    "How many orders were refunded yesterday?",
                    "Top 10 SKUs by units sold this month?",
                    "How many active customers do we have on the team plan?",
                ]
            ),
            "metric-definition": "How is weekly_active_users defined, and does it include API-only users?",
        }[cls]
        run.retrieve(
            "semantic-layer",
            question,
            [
                {"id": "metric.revenue_usd", "text": "Sum of order totals net of refunds, in USD."},
                {"id": "metric.weekly_active_users", "text": "Distinct users with a session or API call in 7 days."},
            ],
        )
        if cls == "metric-definition":
            answer = "weekly_active_users counts distinct users with a session or an API call in the last 7 days."
            run.answer(answer)
            return _Trace("sql-analyst", cls, question, answer, run.steps)
        table = {"revenue-report": "analytics.orders", "cohort-analysis": "analytics.signups"}.get(
            cls, "analytics.orders"
        )
        if r.random() < 0.3:
            run.tool("list_tables", {"schema": "analytics"}, {"tables": ["orders", "refunds", "signups", "sessions"]})
        run.tool(
            "describe_table",
            {"table": table},
            {
                "columns": [
                    {"name": "id", "type": "bigint"},
                    {"name": "created_at", "type": "timestamptz"},
                    {"name": "region", "type": "text"},
                    {"name": "total_usd", "type": "numeric"},
                ]
            },
        )
        sql = {
            "revenue-report": f"SELECT date_trunc('week', created_at) AS week, region, sum(total_usd) AS revenue_usd "
            f"FROM {table} WHERE created_at > now() - interval '{weeks} weeks' GROUP BY 1, 2 ORDER BY 1, 2",
            "cohort-analysis": f"SELECT plan, months_since_signup, count(DISTINCT user_id) FROM {table} "
            "WHERE signup_month = '2024-03' GROUP BY 1, 2 ORDER BY 1, 2",
        }.get(cls, f"SELECT count(*) FROM {table} WHERE created_at >= current_date - 1")
        run.llm(sql)
        if r.random() < 0.06:  # the model guesses a column name wrong, reads the error, fixes it
            bad = sql.replace("total_usd", "revenue")
            run.steps.append(
                {
                    "kind": "tool",
                    "tool": "run_sql_readonly",
                    "args": {"sql": bad, "timeout_s": 30},
                    "status": "error",
                    "error": 'column "revenue" does not exist',
                    "duration_ms": r.randint(20, 90),
                    "gap_ms": 5,
                }
            )
            run.llm(sql)
        rows = [
            [self.day(-7 * i), r.choice(["EMEA", "AMER", "APAC"]), f"{r.uniform(40_000, 250_000):.2f}"]
            for i in range(min(weeks, 5))
        ]
        run.tool(
            "run_sql_readonly",
            {"sql": sql, "timeout_s": 30},
            {
                "columns": ["week", "region", "revenue_usd"],
                "rows": rows,
                "row_count": len(rows) * 3,
                "elapsed_ms": r.randint(80, 4000),
            },
        )
        if cls == "revenue-report":
            run.tool(
                "render_chart",
                {"kind": "line", "x": "week", "y": "revenue_usd", "series": "region"},
                {"chart_url": f"https://charts.internal.example/c/{r.getrandbits(32):08x}"},
            )
        answer = f"Here is the result ({len(rows)} rows shown). Latest value: {rows[0][2]} for {rows[0][1]}."
        run.answer(answer)
        return _Trace("sql-analyst", cls, question, answer, run.steps)

    def code_reviewer(self, user: str) -> _Trace:
        r, run = self.rng, _Run(self.rng, "code-reviewer")
        cls = _pick(r, {"pr-review": 70, "security-review": 15, "dependency-bump": 15})
        repo, number = r.choice(_REPOS), r.randint(1200, 5200)
        files = r.sample(
            [
                "src/handlers.py",
                "src/models.py",
                "src/api/views.py",
                "tests/test_api.py",
                "requirements.txt",
                "src/utils/retry.py",
            ],
            3,
        )
        title = {
            "pr-review": "Add retry with backoff to payment webhook",
            "security-review": "Accept SSO tokens from the new identity provider",
            "dependency-bump": "Bump requests from 2.31.0 to 2.32.3",
        }[cls]
        question = f"Review {repo}#{number}: {title}"
        args = {"repo": repo, "number": number}
        run.tool(
            "fetch_pull_request",
            args,
            {
                "title": title,
                "author": f"dev-{r.randint(1, 60):02d}",
                "files": files,
                "additions": r.randint(5, 400),
                "deletions": r.randint(0, 120),
                "base": "main",
            },
        )
        run.tool("run_linter", args, {"errors": 0, "warnings": r.randint(0, 4)})
        if cls == "dependency-bump":
            run.llm("Patch-level bump, changelog has no breaking changes, CI is green. Approving.")
            run.tool("approve_pull_request", args, {"state": "approved"})
            answer = "Approved: patch-level dependency bump with green CI."
        else:
            for path in files[: r.randint(2, 3)]:
                run.tool(
                    "get_file_contents",
                    {"repo": repo, "path": path, "ref": f"pull/{number}/head"},
                    {
                        "path": path,
                        "content": "def handle(event):\n    for attempt in range(5):\n"
                        "        try:\n            return process(event)\n        except Timeout:\n"
                        "            sleep(2 ** attempt)\n",
                    },
                )
            comments = r.randint(0, 4)
            run.llm(f"{comments} issue(s): unbounded retry sleep, missing jitter, no test for the final failure.")
            for i in range(comments):
                run.tool(
                    "post_review_comment",
                    {
                        "repo": repo,
                        "number": number,
                        "path": files[0],
                        "line": 12 + i * 9,
                        "body": r.choice(
                            [
                                "Add jitter to the backoff.",
                                "This retry has no upper bound on total time.",
                                "Please add a test for this branch.",
                            ]
                        ),
                    },
                    {"comment_id": r.randint(10**8, 10**9)},
                )
            answer = f"Left {comments} comment(s); not approving, a maintainer should take a look."
        run.answer(answer)
        return _Trace("code-reviewer", cls, question, answer, run.steps)

    def research_assistant(self, user: str) -> _Trace:
        r, run = self.rng, _Run(self.rng, "research-assistant")
        cls = _pick(r, {"market-research": 35, "competitor-brief": 25, "literature-review": 20, "fact-check": 20})
        topic = r.choice(
            [
                "AI agent observability",
                "LLM evaluation tooling",
                "incident management for ML",
                "vector databases",
                "prompt-injection defenses",
            ]
        )
        question = {
            "market-research": f"Size of the market for {topic}, with sources.",
            "competitor-brief": f"One-page brief on the main vendors in {topic}.",
            "literature-review": f"Summarize recent papers on {topic}.",
            "fact-check": f"Is it true that most companies run fewer than five agents in production ({topic})?",
        }[cls]
        run.llm(
            f"Plan: search the web for '{topic}', read the top sources, cross-check with internal notes.",
            prompt=question,
        )
        results = [
            {
                "title": f"{topic.title()}: {t}",
                "url": f"https://{d}/{topic.replace(' ', '-')}",
                "snippet": r.choice(_SENTENCES),
            }
            for t, d in r.sample(
                [
                    ("2024 report", "analyst.example.com"),
                    ("state of the market", "research.example.org"),
                    ("buyer survey", "survey.example.net"),
                    ("vendor landscape", "news.example.com"),
                ],
                3,
            )
        ]
        run.tool("web_search", {"query": topic, "max_results": 5}, {"results": results})
        for res in results[: r.randint(2, 3)]:
            run.tool(
                "fetch_url",
                {"url": res["url"]},
                {"url": res["url"], "status": 200, "text": " ".join(r.sample(_SENTENCES, 4))},
            )
        if r.random() < 0.4:
            run.tool(
                "search_internal_docs",
                {"query": topic},
                {"hits": [{"doc": "strategy/2024-q3-notes.md", "text": r.choice(_SENTENCES)}]},
            )
        answer = f"{r.choice(_SENTENCES)} {r.choice(_SENTENCES)} Sources: " + ", ".join(x["url"] for x in results)
        run.answer(answer)
        if cls != "fact-check" and r.random() < 0.5:
            run.tool(
                "save_note", {"title": question[:60], "tags": ["research", topic]}, {"note_id": r.randint(1, 9999)}
            )
        return _Trace("research-assistant", cls, question, answer, run.steps)

    def invoice_extractor(self, user: str) -> _Trace:
        r, run = self.rng, _Run(self.rng, "invoice-extractor")
        cls = _pick(r, {"invoice-pdf": 60, "receipt": 20, "credit-note": 10, "purchase-order": 10})
        doc_id = f"DOC-{r.randint(100000, 999999)}"
        question = f"Process {doc_id} from the accounts-payable inbox"
        run.tool(
            "fetch_document",
            {"document_id": doc_id},
            {"document_id": doc_id, "mime_type": "application/pdf", "pages": r.randint(1, 3)},
        )
        fields, vendor = self.invoice_document(cls)
        run.tool("ocr_extract", {"document_id": doc_id, "language": "auto"}, fields)
        run.tool(
            "lookup_vendor",
            {"name": fields["vendor_name"]},
            {"vendor_id": vendor[0], "name": vendor[1], "vat_id": vendor[2], "payment_terms_days": vendor[4]},
        )
        run.tool("validate_tax_id", {"vat_id": fields["vat_id"]}, {"valid": True, "vat_id": fields["vat_id"]})
        run.llm(json.dumps({k: fields[k] for k in ("invoice_number", "total", "currency", "due_date")}))
        if cls == "purchase-order":  # purchase orders are filed, not booked
            answer = f"{doc_id} is a purchase order from {vendor[1]}; filed for matching, nothing booked."
        else:
            args = {
                "vendor_id": vendor[0],
                "invoice_number": fields["invoice_number"],
                "amount": fields["total"],
                "currency": fields["currency"],
                "issue_date": fields["issue_date"],
                "due_date": fields["due_date"],
                "document_type": cls,
            }
            invoice_id = f"INV-{r.randint(100000, 999999)}"
            run.tool("create_invoice", args, {"invoice_id": invoice_id, "status": "draft"})
            answer = f"Booked {doc_id} as draft {invoice_id}: {fields['total']} {fields['currency']} to {vendor[1]}."
        run.answer(answer)
        return _Trace("invoice-extractor", cls, question, answer, run.steps)

    def ops_pair(self, user: str) -> list[_Trace]:
        """A planner run that hands a plan to the executor, and the executor's run in the same session."""
        r = self.rng
        cls = _pick(r, {"capacity-request": 40, "restart-request": 35, "config-check": 25})
        service, request_id = r.choice(_SERVICES), f"REQ-{r.randint(1000, 9999)}"
        replicas = r.randint(3, 12)
        question = {
            "capacity-request": f"Scale {service} to {replicas} replicas ahead of tonight's campaign.",
            "restart-request": f"{service} is leaking memory again, please restart it.",
            "config-check": f"Check that {service} runs the same image in all regions.",
        }[cls]
        plan = _Run(r, "planner")
        plan.llm(f"Request {request_id}: {cls} for {service}. Looking up the runbook.", prompt=question)
        runbook = f"RB-{service}-{cls.split('-')[0]}"
        plan.tool("lookup_runbook", {"service": service, "topic": cls}, {"runbook_id": runbook, "steps": 3})
        plan_id = f"PLAN-{r.randint(10000, 99999)}"
        plan.tool("create_plan", {"request_id": request_id, "runbook_id": runbook}, {"plan_id": plan_id, "steps": 3})
        plan.tool("handoff", {"to": "executor", "request_id": request_id, "plan_id": plan_id}, {"accepted": True})
        plan.llm(f"Plan {plan_id} handed to the executor.")
        ex = _Run(r, "executor")
        ex.llm(f"Executing {plan_id} for {request_id}.", prompt=f"plan {plan_id}: {question}")
        ex.tool(
            "run_command_sandboxed",
            {"command": f"kubectl get deploy {service} -o wide", "timeout_s": 20},
            {"exit_code": 0, "stdout": f"{service}   {r.randint(2, 6)}/{r.randint(2, 6)}   Running"},
        )
        if cls == "capacity-request":
            ex.tool("scale_deployment", {"service": service, "replicas": replicas}, {"ok": True})
        elif cls == "restart-request":
            ex.tool("restart_service", {"service": service, "strategy": "rolling"}, {"ok": True})
        ex.tool("update_ticket", {"request_id": request_id, "status": "done"}, {"ok": True})
        ex.tool("handoff", {"to": "planner", "request_id": request_id, "result": "done"}, {"accepted": True})
        ex.llm(f"{request_id} done.")
        return [
            _Trace("planner", cls, question, f"Plan {plan_id} handed to the executor.", plan.steps, user),
            _Trace("executor", cls, f"plan {plan_id}: {question}", f"{request_id} done.", ex.steps, user),
        ]
