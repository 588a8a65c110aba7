"""Text and data pools, and the content they make: users, orders, customers, help articles, invoices.

Shared by the healthy traffic and the failure examples; all randomness comes from the generator's ``rng``.
"""

import random
from datetime import datetime, timedelta

_KB = [
    ("kb-1042", "Tracking your order", "Orders ship within 2 business days. Tracking appears once the carrier scans."),
    ("kb-1107", "Delivery delays", "Carrier delays of 1-3 days are common in peak season; we refund shipping fees."),
    ("kb-0311", "Resetting your password", "Use 'Forgot password' on the sign-in page; links expire after 1 hour."),
    ("kb-0318", "Locked accounts", "Accounts lock after 5 failed attempts and unlock automatically after 30 min."),
    ("kb-2210", "Return policy", "Items can be returned within 30 days of delivery in original condition."),
    ("kb-2215", "Warranty", "Electronics carry a 12-month limited warranty covering manufacturing defects."),
    ("kb-3001", "Sizing guide", "Our shoes run half a size small; we recommend ordering half a size up."),
    ("kb-4100", "API keys", "Create keys under Settings > API. Keys are shown once; rotate them every 90 days."),
    ("kb-4120", "Webhooks", "Webhooks retry with exponential backoff for 24 hours; verify the signature header."),
    ("kb-4300", "Inviting your team", "Admins invite teammates under Settings > Members; invites expire in 7 days."),
    (
        "kb-4410",
        "Billing and invoices",
        "Plans bill monthly on the signup date; invoices are emailed to the billing contact.",
    ),
]
_ITEMS = [
    ("SKU-1187", "trail running shoes", "89.90"),
    ("SKU-2040", "noise-cancelling headphones", "199.00"),
    ("SKU-0311", "merino hoodie", "74.50"),
    ("SKU-3310", "espresso grinder", "149.00"),
    ("SKU-4002", "USB-C dock", "64.99"),
    ("SKU-5120", "rain jacket", "119.00"),
]
_VENDORS = [
    ("V-10231", "Nordlicht Logistik GmbH", "DE811907980", "EUR", 30),
    ("V-10077", "Acme Paper Co.", "US47-1234567", "USD", 45),
    ("V-10412", "Brightwater Cleaning Ltd", "GB293847561", "GBP", 14),
    ("V-10519", "Atelier Lumen SARL", "FR40303265045", "EUR", 30),
    ("V-10655", "Kestrel Cloud Services", "US83-4471902", "USD", 30),
]
_REPOS = ["acme/payments-api", "acme/web-checkout", "acme/data-pipelines", "acme/mobile-app", "acme/infra-terraform"]
_SERVICES = ["checkout-api", "search-indexer", "notifications-worker", "billing-service", "image-resizer"]
_SENTENCES = [
    "Adoption of agent frameworks in mid-market companies grew sharply over the last four quarters.",
    "Most buyers cite observability and cost control as the main blockers to production rollout.",
    "Vendors differentiate on evaluation tooling, guardrails and integrations with existing incident tooling.",
    "Pricing is usually per seat with usage-based overages for traced spans or evaluated runs.",
    "Analysts expect consolidation as platform vendors add tracing to their existing products.",
    "Survey respondents reported a median of three agents in production and twelve in pilots.",
]


def _pick(rng: random.Random, weights: dict[str, int]) -> str:
    return rng.choices(list(weights), weights=list(weights.values()))[0]


class _Content:
    """Orders, customers, help articles and invoices for the scenarios, drawn from ``rng``."""

    def __init__(self, rng: random.Random, anchor: datetime):
        self.rng = rng
        self.today = anchor.date()

    def day(self, offset: int) -> str:
        return (self.today + timedelta(days=offset)).isoformat()

    def user(self) -> str:
        # A few heavy users and a long tail, like real traffic.
        r = self.rng
        return f"user-{r.randint(1, 40) if r.random() < 0.3 else r.randint(41, 900):04d}"

    def order(self, order_id: str, status: str | None = None) -> dict:
        r = self.rng
        sku, item, price = r.choice(_ITEMS)
        status = status or r.choice(["processing", "shipped", "shipped", "in_transit", "delivered"])
        out = {
            "order_id": order_id,
            "status": status,
            "items": [{"sku": sku, "name": item, "price": price}],
            "total": price,
            "currency": "USD",
            "customer_id": f"CUS-{r.randint(10000, 99999)}",
        }
        if status != "processing":
            out["carrier"] = r.choice(["UPS", "DHL", "FedEx"])
            out["eta"] = self.day(r.randint(-3, 4))
        return out

    def customer(self, user_id: str, customer_id: str = "") -> dict:
        r = self.rng
        first = r.choice(["ana", "ben", "chen", "dara", "eli", "femi", "greta", "hiro", "ines", "jon"])
        return {
            "customer_id": customer_id or f"CUS-{r.randint(10000, 99999)}",
            "user_id": user_id,
            "email": f"{first}.{r.choice('abcdefghkmnprstw')}@example.com",
            "plan": r.choice(["free", "starter", "team", "business"]),
            "created_at": self.day(-r.randint(1, 900)),
        }

    def kb(self, k: int) -> list[dict]:
        docs = self.rng.sample(_KB, k)
        return [{"id": d, "title": t, "text": x, "score": round(0.9 - i * 0.07, 2)} for i, (d, t, x) in enumerate(docs)]

    def invoice_document(self, cls: str) -> tuple[dict, tuple]:
        r = self.rng
        vendor = r.choice(_VENDORS)
        total = f"{r.uniform(35, 4800):.2f}"
        issued = r.randint(-20, -1)
        return {
            "document_type": cls,
            "vendor_name": vendor[1],
            "vat_id": vendor[2],
            "invoice_number": f"{vendor[1][:3].upper()}-{r.randint(1000, 9999)}",
            "issue_date": self.day(issued),
            "due_date": self.day(issued + vendor[4]),
            "total": f"-{total}" if cls == "credit-note" else total,
            "currency": vendor[3],
            "line_items": r.randint(1, 12),
        }, vendor
