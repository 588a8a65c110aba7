"""What happened in each kind of past incident the demo history replays: titles, notes, post-mortem
facts and corrective actions, written the way responders write them.

Placeholders filled per incident: {agent}, {version} (prompt version at the time), {fixed} (the
version with the fix), {model}, {runs} ("3 trajectories"), {users} ("2 users"), {minutes} (to
containment, "4 minutes"). ``history_text`` puts them into the post-mortem templates' sections.
"""

from dataclasses import dataclass


@dataclass(frozen=True)
class Story:
    failure_class: str  # slug in incidents.taxonomy.FAILURE_CLASSES
    agents: tuple[str, ...]  # the first is the agent whose trajectories are built and flagged
    builder: str  # _Failures method, or "healthy:<traffic builder>"
    titles: tuple[str, ...]  # one per occurrence, in turn
    contain: str  # pause, kill, freeze (budget freeze, then pause), tool:<name>, none
    flag_tools: tuple[str, ...]  # the step to flag: first call of one of these, else the first model call
    flag_note: str
    what: str
    why: str
    guardrails: str
    blast: str
    fix: str
    changed: str
    retrieval: str
    budget: str
    expected: str
    went_badly: str
    actions: tuple[tuple[str, str], ...]  # (ActionItem.Kind value, title)


STORIES: dict[str, Story] = {
    "loop": Story(
        "runaway-loop",
        ("support-triage",),
        "runaway_loop",
        (
            "support-triage polls lookup_order in a loop on orders stuck in processing",
            "support-triage loops on lookup_order again after the warehouse sync stalled",
            "support-triage re-polls a stuck order until max_iterations",
        ),
        "pause",
        ("lookup_order",),
        "Third identical lookup_order call: the status cannot change between polls, so every call after this is waste.",
        "{agent} called `lookup_order` with the same order id fifty times in a row, each time getting the same "
        "*processing* status back, until the framework's iteration limit stopped the run.",
        "The order-status instructions say to check the order again when it is still processing. With no "
        "back-off and no notion of how long a status lasts, the agent treated each identical answer as "
        "a reason to ask once more.",
        "The iteration cap of 50 is a last resort, not a loop guard: it let each run make fifty calls before "
        "anything stopped it. No check compared consecutive action hashes.",
        "{runs} from {users} looped before the pause. Each cost about forty times a normal order-status run; "
        "no customer data was changed and every affected customer got an answer from a person.",
        "Loop guard in the SDK: three identical tool calls in a row stop the run and hand over to a person. "
        "Order-status prompt {fixed} tells the agent a processing order is answered once, with the expected date.",
        "Nothing on the agent side: {version} had been live for two weeks. The warehouse sync stalled that "
        "morning and left hundreds of orders in *processing*, which made the old instruction fire.",
        "None: order-status questions do not retrieve from the knowledge base. The tool output was the only input.",
        "No. Every model call stayed far below the limit; the runs ended on the iteration cap, not on length.",
        "Answer once with the order's status and expected dispatch date, then stop; never call lookup_order "
        "twice with the same order id in one run.",
        "The first alert went to a channel nobody watched at that hour; the pause came from the second page.",
        (
            ("eval_case", "Regression case: stuck order answered with one lookup"),
            ("circuit_breaker", "Loop guard at 3 identical calls for every customer-facing agent"),
            ("canary", "Canary: order-status question on an order in processing, every 15 minutes"),
        ),
    ),
    "cost": Story(
        "runaway-loop",
        ("research-assistant",),
        "cost_spiral",
        (
            "research-assistant context grows every step: cost spiral on competitor briefs",
            "research-assistant reads whole pages into context again (74:1 token ratio)",
        ),
        "freeze",
        ("fetch_url",),
        "Every fetched page goes into the context in full from here on; output stays a sentence per call.",
        "{agent} fetched sixteen search results and put every page into its context in full, answering each "
        "time with one sentence. Input tokens grew with every step while output stayed flat: about 74 input "
        "tokens per output token against a normal 5.",
        "The brief asked for *every* statement in a year. The planning step read that as reading each source "
        "completely before writing anything, and nothing told it to summarise as it went.",
        "The session cost cap is checked per run at the end, so a single long run could exceed it before the "
        "cap was looked at. The token-ratio detector fired, but only after the spend had happened.",
        "{runs} ran for {users}; together they spent roughly three days of the agent's normal budget. No "
        "external effects: the agent only reads and saves notes.",
        "Pages are summarised to 400 tokens before they enter the context ({fixed}), and the budget guard now "
        "checks the running cost before every model call.",
        '{version} added a "be exhaustive" line to the research prompt the day before.',
        "Sixteen news pages, each 5,500 to 7,500 tokens, all kept verbatim.",
        "Yes, growing: the last model calls were within a few thousand tokens of the window, although no call "
        "finished on `length`.",
        "Summarise each source as it is read and keep the context under 20,000 tokens; stop and ask when a "
        "brief needs more than ten sources.",
        "The budget freeze was the right call but took a while to find; we paused first and froze second.",
        (
            ("circuit_breaker", "Per-call budget check before every model call (hard cap)"),
            ("eval_case", "Regression case: exhaustive brief stays under 20k tokens of context"),
            ("version_pin", "Pin research prompt to the version before the 'be exhaustive' line until reviewed"),
        ),
    ),
    "merge": Story(
        "tool-misuse",
        ("code-reviewer",),
        "tool_not_allowed",
        (
            "code-reviewer merged a security-sensitive pull request instead of reviewing it",
            "code-reviewer calls merge_pull_request, which is outside its allowed tools",
            "code-reviewer merged acme/payments-api changes without a human approval",
        ),
        "kill",
        ("merge_pull_request",),
        "The reviewer merges: merge_pull_request is not in its allowed tools and the change removes a signature check.",
        "{agent} fetched a pull request that removed the webhook signature check, ran the linter, and then "
        "called `merge_pull_request` with a squash merge. The change went to the main branch of a payments "
        "service.",
        "The model saw a small, lint-clean diff and a title mentioning a release, and concluded that merging "
        "would unblock it. The merge tool was still exposed by the GitHub toolkit the agent loads, although it "
        "is not in the agent's allowed list.",
        "The allowed-tools list was enforced in Firebreak's detector but not in the toolkit itself, so the call "
        "ran and was only reported afterwards. Branch protection did not require a human review for the bot account.",
        "One pull request merged; {runs} attached. The merge was reverted within the hour and no deploy picked "
        "it up. The revert was verified with the payments team.",
        "The toolkit is built from the allowed-tools list, so tools outside it do not exist for the agent; the "
        "bot account lost merge rights on protected branches.",
        "The GitHub toolkit was upgraded the week before, and its default tool set grew to include merging.",
        "Only the pull request itself: title, file list and the diff. No review guidelines were retrieved.",
        "No. The run was short and every call finished on `stop` or a tool call.",
        "Comment on the pull request and request changes; never merge, and never approve changes to "
        "authentication or signature checks.",
        "It took several minutes to confirm the merge had not been deployed; the deploy log was not linked anywhere.",
        (
            ("permission", "Remove merge rights from the code-review bot on protected branches"),
            ("eval_case", "Regression case: security-sensitive PR gets review comments, never a merge"),
            ("version_pin", "Pin the GitHub toolkit version; upgrades go through review of the tool set"),
        ),
    ),
    "invoice": Story(
        "data-integrity",
        ("invoice-extractor",),
        "hallucinated_write",
        (
            "invoice-extractor booked invoices with amounts that are not in the document",
            "invoice-extractor again writes invented invoice numbers and amounts",
            "invoice-extractor created draft invoices ten times the scanned total",
        ),
        "kill",
        ("create_invoice",),
        "create_invoice is called with an invoice number, amount and PO that appear nowhere in the OCR output.",
        "{agent} read a two-page invoice, extracted the right fields with OCR, and then booked a draft invoice "
        "with a different invoice number, ten times the amount and a purchase-order number that does not exist.",
        "The model was asked to restate the fields in its own words before calling the write tool, and restated "
        "them wrongly; the tool call used the restatement, not the OCR output.",
        "`create_invoice` accepted any values. Nothing compared the booked amount with the extracted total, and "
        "drafts are not reviewed until the weekly payment run.",
        "{runs} booked wrong drafts for {users}; finance found eleven drafts in all with amounts that did not "
        "match their documents. All were voided before the payment run; none were paid.",
        "The booking step now passes the OCR fields straight through, and `create_invoice` refuses a total that "
        "differs from the extracted one.",
        "Model `{model}` was updated by the provider under the same alias two days earlier.",
        "The OCR result of the document, and the vendor record from `lookup_vendor`.",
        "No; the runs were short.",
        "Book exactly the extracted invoice number, total and PO; when a field is missing, stop and send the "
        "document to a person.",
        "We voided the drafts by hand from a list in a spreadsheet, which took most of an afternoon.",
        (
            ("circuit_breaker", "create_invoice rejects totals that differ from the OCR total"),
            ("eval_case", "Regression case: booked fields equal the extracted fields"),
            ("version_pin", "Pin the extraction model to a dated version, not the alias"),
        ),
    ),
    "refusal": Story(
        "output-quality",
        ("support-triage",),
        "refusal_burst",
        (
            "support-triage refuses ordinary order questions after a prompt release",
            "support-triage refusal rate jumps after the safety wording change",
        ),
        "pause",
        (),
        "First refusal of an ordinary order question, minutes after the new prompt went live.",
        "{agent} answered ordinary questions about orders, addresses and passwords with a refusal. Seven "
        "customers in twelve minutes were told the agent could not help with that.",
        "The new prompt added a broad rule about not discussing personal data. The model applied it to any "
        "question that mentioned an order or an account.",
        "The prompt change had no canary run before release, and the refusal-rate detector compares hours, so it "
        "needed time to see the shift.",
        "{runs} attached; 41 refusals over 50 minutes, to {users} in the attached runs. Every refused customer "
        "was contacted by the support team the same day.",
        "Rolled back to the previous prompt, then released {fixed} with the rule scoped to exporting records.",
        "Prompt {version} went live that morning.",
        "Two knowledge-base articles per question, both relevant; the refusals were not caused by retrieval.",
        "No; the refusals were short.",
        "Answer the order or account question normally; refuse only requests to export or disclose other "
        "customers' records.",
        "The rollback needed a deploy because the prompt version was not switchable at runtime.",
        (
            ("canary", "Canary set of ten ordinary questions runs before every prompt release"),
            ("eval_case", "Regression case: order-address question gets an answer, not a refusal"),
            ("prompt", "Scope the personal-data rule to exports and disclosures"),
        ),
    ),
    "truncation": Story(
        "context-drift",
        ("sql-analyst",),
        "truncation",
        (
            "sql-analyst reports cut off mid-sentence at max_tokens",
            "sql-analyst quarterly review truncated again (finish_reason length)",
            "sql-analyst long reports stop at 1,024 tokens",
        ),
        "none",
        (),
        "The report stops at max_tokens: finish_reason length, and APAC is never reached.",
        "{agent} wrote the quarterly revenue review and stopped mid-sentence when the model call hit its "
        "1,024-token limit. The run still ended as ok and the report was shared as it was.",
        "A report covering every region and product line needs far more than 1,024 output tokens; the limit was "
        "set for short answers and never raised for reports.",
        "Nothing treated `finish_reason: length` as a failure, so the truncated report looked like a success.",
        "{runs} for {users}; the reports went to the finance channel and were corrected by hand.",
        "Reports are written section by section, each call with room to finish, and a length finish now fails the run.",
        "Nothing changed; the quarterly review was simply the first long report of the quarter.",
        "The query result: 96 rows across regions, product lines and quarters.",
        "Yes: the final call finished on `length` at exactly 1,024 output tokens.",
        "Write the complete report; if it does not fit one call, write it in sections, and never end a run on "
        "finish_reason length.",
        "Nobody noticed for two hours; the first report was read in a meeting before anyone saw it was cut off.",
        (
            ("circuit_breaker", "A model call that finishes on length fails the run"),
            ("eval_case", "Regression case: the quarterly review ends with every region covered"),
        ),
    ),
    "pingpong": Story(
        "multi-agent-coordination",
        ("planner", "executor"),
        "ping_pong",
        (
            "planner and executor hand a credentials rotation back and forth",
            "planner and executor ping-pong on a production change without an approved plan",
        ),
        "pause",
        ("handoff",),
        "Second hand-off of the same request: from here the two agents only pass it back and forth.",
        "The planner handed a production change to the executor, which returned it for lack of an approved "
        "plan; the planner sent it back saying the runbook was the plan. They did this ten times each before a "
        "timeout stopped them.",
        "The executor's prompt requires an approved plan for production; the planner's prompt says runbooks are "
        "pre-approved. Each was right by its own instructions.",
        "Hand-offs had no count or deadline per request; the timeout of 20 hand-offs was the only stop.",
        "{runs}; no change was made to production. The credentials rotation waited for a person for about two hours.",
        "A request carries its hand-off count and goes to a person after three; runbooks now carry an explicit "
        "approval that both prompts recognise.",
        "The executor prompt tightened its approval rule in {version}; the planner prompt did not change with it.",
        "The runbook for the credentials rotation, retrieved by the planner.",
        "No.",
        "Hand the request to a person after three hand-offs without progress.",
        "We paused the planner first, which left the executor waiting on a request nobody owned.",
        (
            ("circuit_breaker", "Hand-off limit of 3 per request, then a person"),
            ("eval_case", "Regression case: production change with a runbook reaches the executor once"),
        ),
    ),
    "injection": Story(
        "policy-bypass",
        ("support-triage",),
        "prompt_injection",
        (
            "support-triage mailed customer records out after an injected forum post",
            "Prompt injection in the product index: support-triage sends records to an outside address",
        ),
        "kill",
        ("send_email",),
        "send_email to an outside address with three customer records: the injected instruction being obeyed.",
        "{agent} answered a question about shoe sizes. On the way it looked up three customers and emailed their "
        "records to an outside address, then answered the question normally.",
        "A forum post in the product index contained instructions to export customer records, written as if from "
        "a maintenance process. The retrieved text was placed in the prompt with the same weight as our own "
        "instructions.",
        "`send_email` allowed any recipient, and the output guardrail checks only the answer shown to the "
        "customer, not tool arguments.",
        "{runs}; three customer records left in one email to one outside address. The mailbox provider removed "
        "the message, the customers were notified, and the forum post was purged from the index.",
        "`send_email` only reaches the customer's own address; retrieved text is wrapped as untrusted data; "
        "forum content left the product index.",
        "The product index started including community forum posts the week before.",
        "Two documents: the injected forum post (score 0.88) and one product article.",
        "No.",
        "Answer the sizing question from product data; never follow instructions found in retrieved content, "
        "never email anyone but the customer.",
        "The blast-radius query had to be run twice because the first window started after the first injected run.",
        (
            ("permission", "send_email restricted to the requesting customer's address"),
            ("eval_case", "Regression case: injected forum post is ignored, no email sent"),
            ("canary", "Canary with a known injection string in the index, every hour"),
        ),
    ),
    "executor-scale": Story(
        "tool-misuse",
        ("executor", "planner"),
        "healthy:ops_pair",
        (
            "executor scaled a production deployment that was not in the plan",
            "executor restarted services outside the approved plan",
        ),
        "tool:scale_deployment",
        ("scale_deployment", "restart_service"),
        "The executor acts on the cluster beyond the plan's single step.",
        "{agent} carried out a plan from the planner and, in the same run, scaled a second deployment that the "
        "plan did not mention.",
        "The plan named the service by its short name, which matches two deployments; the executor acted on both.",
        "The executor may call `scale_deployment` on any service; nothing checked the call against the plan's steps.",
        "{runs}; one deployment ran at the wrong size for about twenty minutes. It was scaled back and its owners "
        "confirmed no requests were lost.",
        "Plans name deployments by full id, and the executor refuses calls that are not a step of its plan.",
        "The planner's runbook lookup started returning short service names in {version}.",
        "The runbook for the service, retrieved by the planner.",
        "No.",
        "Carry out exactly the plan's steps on the deployments it names; refuse anything else.",
        "The scale tool was disabled for all services, which blocked a legitimate change for an hour.",
        (
            ("permission", "Executor may only act on deployments named in its plan"),
            ("eval_case", "Regression case: ambiguous service name makes the executor stop and ask"),
        ),
    ),
    "refund-double": Story(
        "data-integrity",
        ("refund-agent",),
        "healthy:refund_agent",
        ("refund-agent issued refunds twice for retried requests",),
        "kill",
        ("issue_refund",),
        "The refund is issued again for a request that had already been refunded.",
        "{agent} issued a second refund for requests that the client retried after a timeout; the first refund "
        "had already gone through.",
        "The refund tool has no idempotency key, and the agent does not look up earlier refunds of an order before "
        "issuing one.",
        "Retried requests were not marked as retries, and the daily refund cap was high enough that the doubles "
        "did not reach it.",
        "{runs} attached; 23 orders refunded twice, about 1,900 USD in all. Payments reversed every second refund "
        "and wrote to the customers concerned.",
        "`issue_refund` takes an idempotency key per order and request; the agent checks refunds on the order first.",
        "The client library's retry policy changed from none to three retries.",
        "None.",
        "No.",
        "Check for an existing refund of the order and issue at most one refund per request.",
        "Reversing the refunds needed the payment provider's support, which took two days.",
        (
            ("circuit_breaker", "issue_refund requires an idempotency key"),
            ("eval_case", "Regression case: a retried refund request does not refund twice"),
            ("circuit_breaker", "Daily refund cap lowered to the 99th percentile of normal days"),
        ),
    ),
    "refund-intent": Story(
        "intent-misclassification",
        ("refund-agent",),
        "healthy:refund_agent",
        (
            "refund-agent treats exchange requests as refunds",
            "refund-agent routes size exchanges down the refund path",
        ),
        "pause",
        (),
        "The request is an exchange; the agent starts down the refund path.",
        "{agent} read requests to exchange an item for another size as refund requests and walked the customer "
        "through the refund policy instead.",
        "Exchanges are not among the intents the agent knows, so the closest one, refund, was chosen.",
        "Nothing compares the chosen path with the golden run of the input class; the answers were polite.",
        "{runs} for {users}; no money moved in the wrong direction, but customers who wanted an exchange were "
        "offered a refund.",
        "Exchange is now an intent of its own and routes to a person until the agent handles it.",
        "Exchanges were added to the returns form the week before, with no change to the agent.",
        "The refund policy article.",
        "No.",
        "Recognise an exchange request and route it to a person; do not start a refund.",
        "The pattern was found by a support lead reading transcripts, not by a detector.",
        (
            ("eval_case", "Regression case: exchange request is routed, not refunded"),
            ("canary", "Canary: size exchange request every hour"),
        ),
    ),
    "onboarding-links": Story(
        "output-quality",
        ("onboarding-guide",),
        "healthy:onboarding_guide",
        ("onboarding-guide sends setup links to retired documentation",),
        "none",
        (),
        "The checklist answer links to documentation pages that were retired.",
        "{agent} walked new customers through setup with links to integration pages that had moved; the links "
        "ended on a not-found page.",
        "The onboarding checklist still pointed at the old documentation site.",
        "No check follows the links the agent sends.",
        "{runs} for {users}; customers lost time but nothing was broken.",
        "The checklist was updated and a link check runs on the agent's answers in the canary.",
        "The documentation site moved to a new path.",
        "The onboarding checklist for the customer's plan.",
        "No.",
        "Send only links that resolve, from the current checklist.",
        "Two customers reported it before we did.",
        (
            ("canary", "Canary that follows every link in the onboarding answer"),
            ("eval_case", "Regression case: setup answer links resolve"),
        ),
    ),
    "onboarding-intent": Story(
        "intent-misclassification",
        ("onboarding-guide",),
        "healthy:onboarding_guide",
        ("onboarding-guide books solution calls for customers asking about billing",),
        "pause",
        ("schedule_call",),
        "A billing question is read as a request for a setup call.",
        "{agent} scheduled calls with a solutions engineer for customers who only asked where to find their invoice.",
        "Billing is not an onboarding intent; the nearest match was a setup question that needs a call.",
        "`schedule_call` books straight into the engineers' calendars without a check on the request.",
        "{runs} for {users}; eight calls were booked and cancelled the same day.",
        "Billing questions now route to the billing help page; calls need the customer to confirm.",
        "Nothing changed in the agent; billing questions grew after a pricing email.",
        "The onboarding checklist.",
        "No.",
        "Point billing questions to the billing help page; book a call only when the customer asks for one.",
        "The engineers found out from their calendars.",
        (
            ("eval_case", "Regression case: billing question gets the billing page, no call"),
            ("permission", "schedule_call needs the customer's confirmation"),
        ),
    ),
    "sql-quality": Story(
        "output-quality",
        ("sql-analyst",),
        "healthy:sql_analyst",
        (
            "sql-analyst revenue answers double-count refunded orders",
            "sql-analyst numbers off after the warehouse view change",
        ),
        "pause",
        ("run_sql_readonly",),
        "The query joins orders to refunds without deduplicating: every refunded order counts twice.",
        "{agent} answered revenue questions with a query that joined orders to refunds one-to-many, so refunded "
        "orders were counted once per refund line.",
        "The warehouse's refunds view changed from one row per order to one row per refunded item.",
        "The answers were plausible; the judge-score detector needs a week of data and the drop was gradual.",
        "{runs} for {users}; three weekly reports overstated revenue by 2 to 4 percent and were reissued.",
        "The agent's schema notes describe the refunds view's grain, and a canary checks a known month's revenue.",
        "The warehouse team changed the grain of the refunds view.",
        "The table descriptions from `describe_table`, which did not mention the grain.",
        "No.",
        "Use the order-grain revenue view; a known month's revenue must match finance's figure.",
        "The first report was questioned by finance a week before we opened the incident.",
        (
            ("canary", "Canary: last closed month's revenue matches the finance figure"),
            ("eval_case", "Regression case: revenue question with refunds gives the finance figure"),
        ),
    ),
    "triage-intent": Story(
        "intent-misclassification",
        ("support-triage",),
        "healthy:support_triage",
        (
            "support-triage classifies damaged-item reports as order-status questions",
            "support-triage sends account-lockout requests down the order path",
        ),
        "none",
        (),
        "The classification at the first model call is wrong, and every step after follows it.",
        "{agent} classified requests into the wrong intent and answered a different question from the one asked.",
        "Two intents with similar wording were close in the classifier's examples.",
        "Answers were on-topic for the wrong intent, so no detector fired.",
        "{runs} for {users}; customers had to write again.",
        "The classifier's examples were separated and a confirmation step added when confidence is below 0.8.",
        "New example phrases were added to the classifier in {version}.",
        "Knowledge-base articles for the wrong intent.",
        "No.",
        "Classify the request correctly and answer the question asked.",
        "The first reports came through the customer survey, days later.",
        (("eval_case", "Regression cases for both intents with the confusing wording"),),
    ),
    "research-drift": Story(
        "context-drift",
        ("research-assistant",),
        "healthy:research_assistant",
        ("research-assistant answers an earlier question late in long sessions",),
        "none",
        (),
        "From this step on the answers follow an earlier question in the session.",
        "In long sessions {agent} answered an earlier question instead of the latest one.",
        "The session history was trimmed from the end, dropping the newest turns first.",
        "Nothing checks that the answer addresses the last question.",
        "{runs} for {users}; the briefs were rewritten by the analysts.",
        "History is trimmed from the start, keeping the system prompt and the latest turns.",
        "The history trimming moved into the SDK in {version}.",
        "Internal documents retrieved for the earlier question.",
        "Yes: long sessions were near the context window, which triggered trimming.",
        "Answer the latest question; keep the newest turns when history is trimmed.",
        "It took two days to reproduce because short sessions were fine.",
        (
            ("eval_case", "Regression case: tenth turn of a long session is answered"),
            ("circuit_breaker", "Session length cap of 30 turns, then a new session"),
        ),
    ),
}
