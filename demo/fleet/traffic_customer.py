"""Healthy traffic of the customer-facing agents, which run an output guardrail on every answer."""

import json
from decimal import Decimal

from demo.fleet.content import _Content, _pick
from demo.fleet.runs import _Run, _Trace


class _CustomerTraffic(_Content):
    """Scenario builders for support-triage, refund-agent and onboarding-guide."""

    def support_triage(self, user: str) -> _Trace:
        r, run = self.rng, _Run(self.rng, "support-triage")
        cls = _pick(
            r, {"order-status": 35, "shipping-delay": 20, "account-access": 15, "product-question": 20, "complaint": 10}
        )
        order_id = f"ORD-{r.randint(10000, 99999)}"
        question = {
            "order-status": f"Hi, where is my order {order_id}? I haven't had an update in a while.",
            "shipping-delay": f"My order {order_id} was supposed to arrive yesterday. What is going on?",
            "account-access": "I can't log in, it says my account is locked. Can you help?",
            "product-question": r.choice(
                [
                    "Do your trail shoes run small?",
                    "Is the espresso grinder covered by warranty?",
                    "Can I return the hoodie if it doesn't fit?",
                ]
            ),
            "complaint": f"Second time my order ({order_id}) arrives damaged. Really disappointed.",
        }[cls]
        if r.random() < 0.6:
            turns = [{"role": "user", "text": "Hi"}, {"role": "assistant", "text": "Hi! How can I help today?"}]
            run.retrieve("conversation-history", user, turns)
        run.llm(json.dumps({"intent": cls, "confidence": round(r.uniform(0.78, 0.99), 2)}), prompt=question)
        if cls in ("order-status", "shipping-delay"):
            order = self.order(order_id)
            run.tool("lookup_order", {"order_id": order_id}, order)
            if r.random() < 0.5:
                run.tool(
                    "lookup_customer", {"customer_id": order["customer_id"]}, self.customer(user, order["customer_id"])
                )
            if cls == "shipping-delay":
                run.retrieve("kb-articles", "delivery delay compensation", self.kb(2))
            eta = order.get("eta", "as soon as it ships")
            answer = f"Your order {order_id} is {order['status'].replace('_', ' ')}; expected delivery {eta}."
        elif cls == "account-access":
            customer = self.customer(user)
            run.retrieve("kb-articles", "account locked sign in", self.kb(2))
            run.tool("lookup_customer", {"user_id": user}, customer | {"locked": True, "failed_attempts": 5})
            run.tool(
                "send_email",
                {"to": customer["email"], "template": "password-reset"},
                {"message_id": f"msg-{r.getrandbits(40):010x}", "status": "queued"},
            )
            answer = "Your account was locked after several failed attempts. I've sent you a password reset link."
        elif cls == "product-question":
            docs = self.kb(3)
            run.retrieve("kb-articles", question, docs)
            answer = f"{docs[0]['text']} (from '{docs[0]['title']}')"
        else:
            customer = self.customer(user)
            run.tool("lookup_order", {"order_id": order_id}, self.order(order_id, "delivered"))
            ticket = f"TCK-{r.randint(100000, 999999)}"
            run.tool(
                "create_ticket",
                {
                    "customer_id": customer["customer_id"],
                    "order_id": order_id,
                    "priority": "high",
                    "summary": "Repeated damaged delivery",
                },
                {"ticket_id": ticket, "status": "open"},
            )
            run.tool(
                "escalate_to_human",
                {"ticket_id": ticket, "queue": "tier2"},
                {"queued": True, "position": r.randint(1, 12)},
            )
            answer = f"I'm sorry about this. I've opened ticket {ticket} and a specialist will contact you today."
        run.answer(answer, guardrail=True)
        return _Trace("support-triage", cls, question, answer, run.steps)

    def refund_agent(self, user: str) -> _Trace:
        r, run = self.rng, _Run(self.rng, "refund-agent")
        cls = _pick(r, {"refund-request": 50, "partial-refund": 20, "refund-status": 20, "chargeback-inquiry": 10})
        order_id = f"ORD-{r.randint(10000, 99999)}"
        order = self.order(order_id, "delivered")
        item = order["items"][0]
        reason = r.choice(["damaged", "wrong_size", "not_as_described", "late_delivery"])
        question = {
            "refund-request": f"I want a refund for {order_id}, the {item['name']} arrived {reason.replace('_', ' ')}.",
            "partial-refund": f"Part of order {order_id} was missing. Can I get a partial refund?",
            "refund-status": f"When will I get my refund for {order_id}?",
            "chargeback-inquiry": f"My bank shows a chargeback for {order_id}, what does that mean?",
        }[cls]
        run.llm(json.dumps({"intent": cls, "order_id": order_id}), prompt=question)
        run.tool("lookup_order", {"order_id": order_id}, order)
        if cls in ("refund-request", "partial-refund"):
            amount = item["price"] if cls == "refund-request" else f"{Decimal(item['price']) / 2:.2f}"
            eligible = r.random() > 0.1
            run.tool(
                "check_refund_policy",
                {"order_id": order_id, "reason": reason},
                {
                    "eligible": eligible,
                    "refundable_amount": amount if eligible else "0.00",
                    "policy": "30-day-returns",
                    "note": "" if eligible else "outside the 30-day window",
                },
            )
            if eligible:
                refund_id = f"RF-{r.randint(100000, 999999)}"
                run.llm(json.dumps({"action": "issue_refund", "amount": amount}))
                run.tool(
                    "issue_refund",
                    {"order_id": order_id, "amount": amount, "currency": "USD", "reason_code": reason},
                    {"refund_id": refund_id, "status": "pending"},
                )
                if r.random() < 0.4:
                    run.tool(
                        "update_customer_record",
                        {"customer_id": order["customer_id"], "fields": {"last_refund_id": refund_id}},
                        {"updated": True},
                    )
                answer = f"I've issued a refund of ${amount} ({refund_id}); it should appear in 3-5 business days."
            else:
                answer = "This order is outside our 30-day return window, so I can't issue a refund."
        elif cls == "refund-status":
            answer = f"Your refund for {order_id} was issued and should reach your account within 5 business days."
        else:
            run.tool(
                "lookup_customer", {"customer_id": order["customer_id"]}, self.customer(user, order["customer_id"])
            )
            answer = "A chargeback means your bank reversed the payment; we've received the dispute and will respond."
        run.answer(answer, guardrail=True)
        return _Trace("refund-agent", cls, question, answer, run.steps)

    def onboarding_guide(self, user: str) -> _Trace:
        r, run = self.rng, _Run(self.rng, "onboarding-guide")
        cls = _pick(r, {"getting-started": 40, "integration-setup": 30, "billing-setup": 15, "team-invite": 15})
        question = {
            "getting-started": "We just signed up, what should we do first?",
            "integration-setup": "How do I connect our webhook endpoint?",
            "billing-setup": "Where do I add a billing contact for invoices?",
            "team-invite": "How do I invite my team?",
        }[cls]
        customer = self.customer(user)
        run.tool("lookup_customer", {"user_id": user}, customer)
        items = ["create_project", "create_api_key", "send_first_span", "invite_team", "set_billing_contact"]
        done = r.randint(0, 4)
        run.tool(
            "get_onboarding_checklist",
            {"customer_id": customer["customer_id"]},
            {"items": [{"id": x, "done": i < done} for i, x in enumerate(items)]},
        )
        docs = self.kb(2)
        run.retrieve("help-center", question, docs)
        answer = f"Next step: {items[done].replace('_', ' ')}. {docs[0]['text']}"
        run.answer(answer, guardrail=True)
        if cls == "integration-setup" and r.random() < 0.3:
            run.tool(
                "schedule_call",
                {
                    "customer_id": customer["customer_id"],
                    "slot": f"{self.day(2)}T15:00:00Z",
                    "topic": "webhook integration",
                },
                {"booking_id": f"BK-{r.randint(1000, 9999)}", "status": "confirmed"},
            )
        elif r.random() < 0.2:
            run.tool(
                "send_email",
                {"to": customer["email"], "template": "onboarding-next-steps"},
                {"message_id": f"msg-{r.getrandbits(40):010x}", "status": "queued"},
            )
        return _Trace("onboarding-guide", cls, question, answer, run.steps)
