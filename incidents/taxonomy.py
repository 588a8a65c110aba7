"""Seed data: the failure taxonomy and the post-mortem templates (editable afterwards in the admin).

Kept as plain data so migrations and tests read the same source.
"""

CONTAIN, ASSESS, REMEDIATE, LEARN = "contain", "assess", "remediate", "learn"

FAILURE_CLASSES = [
    {
        "slug": "output-quality",
        "name": "Output-quality degradation",
        "description": "Answers get worse without any error: wrong, vague, hallucinated or off-format output.",
        "signals": [
            "judge-score drop of 0.3 or more",
            "token-length distribution drift (KL >= 0.15 over a 7-day baseline)",
            "embedding-centroid drift (cosine < 0.82)",
            "failing canary prompts",
        ],
        "detectors": ["length_drift", "judge_score", "embedding_drift", "canary"],
        "default_severity": "SEV2",
        "runbook": [
            {"phase": CONTAIN, "text": "Pause the agent or route traffic to the fallback response"},
            {"phase": CONTAIN, "text": "Freeze changes (deploy lock) until the cause is known"},
            {"phase": ASSESS, "text": "Compare recent trajectories with the golden run of the input class"},
            {"phase": ASSESS, "text": "Check what changed: model version, prompt version, tools, retrieval index"},
            {"phase": REMEDIATE, "text": "Pin or roll back the version that changed; verify on canaries"},
            {"phase": LEARN, "text": "Capture a failing trajectory as an eval case; add a canary"},
        ],
    },
    {
        "slug": "tool-misuse",
        "name": "Behavioural deviation / tool misuse / scope creep",
        "description": "The agent calls tools it should not, with arguments it should not, or acts beyond its task.",
        "signals": ["tool outside the allowed set", "high-risk tool called", "unusual tool sequence vs golden"],
        "detectors": ["tool_not_allowed"],
        "default_severity": "SEV1",
        "runbook": [
            {"phase": CONTAIN, "text": "Kill the agent, or disable the misused tool"},
            {"phase": CONTAIN, "text": "Revoke or rotate the credentials the tool used"},
            {"phase": ASSESS, "text": "List every external effect of the misused tool calls (blast radius)"},
            {"phase": REMEDIATE, "text": "Revert the effects; verify with the owners of the systems touched"},
            {"phase": LEARN, "text": "Narrow the allowed tool set or add a permission check; capture an eval case"},
        ],
    },
    {
        "slug": "policy-bypass",
        "name": "Safety and policy bypass (prompt injection)",
        "description": "Input or retrieved content steered the agent past its instructions or safety policy.",
        "signals": ["refusal-rate shift", "instructions found in tool output or retrieved text", "data exfiltration"],
        "detectors": ["refusal_shift"],
        "default_severity": "SEV1",
        "runbook": [
            {"phase": CONTAIN, "text": "Kill the agent; disable the tool or source that carried the injection"},
            {"phase": ASSESS, "text": "Find the injected content in the trajectory and every session it reached"},
            {"phase": REMEDIATE, "text": "Purge the injected content from the retrieval index or source"},
            {"phase": LEARN, "text": "Add the injection as an eval case; add an input/output guardrail"},
        ],
    },
    {
        "slug": "runaway-loop",
        "name": "Runaway loop and resource exhaustion (cost spiral)",
        "description": "The agent repeats itself or balloons its context, spending without making progress.",
        "signals": [
            "identical action hash repeated (3 in a row)",
            "step, tool-call, token or cost cap reached",
            "input:output token ratio far above normal (74:1 against 5:1)",
            "context growing step over step",
        ],
        "detectors": ["action_repeat", "session_caps", "token_ratio", "context_growth"],
        "default_severity": "SEV2",
        "runbook": [
            {"phase": CONTAIN, "text": "Pause the agent (keeps the trajectory readable) or freeze its budget"},
            {"phase": ASSESS, "text": "Find the first repeated step; measure spend over the window"},
            {"phase": REMEDIATE, "text": "Set a loop guard and hard caps; resume when verified"},
            {"phase": LEARN, "text": "Capture the looping input as an eval case; set a circuit-breaker"},
        ],
    },
    {
        "slug": "data-integrity",
        "name": "Data-integrity violation",
        "description": "The agent wrote wrong, invented or corrupted data into a system of record.",
        "signals": ["write tool called with values absent from retrieved context", "downstream validation failures"],
        "detectors": ["tool_errors"],
        "default_severity": "SEV1",
        "runbook": [
            {"phase": CONTAIN, "text": "Kill the agent; disable its write tools"},
            {"phase": ASSESS, "text": "List every record written in the window (blast radius, user list export)"},
            {"phase": REMEDIATE, "text": "Restore or correct the records; verify with the data owner"},
            {"phase": LEARN, "text": "Require grounding for writes; capture an eval case"},
        ],
    },
    {
        "slug": "intent-misclassification",
        "name": "Intent misclassification",
        "description": "The agent understood the request as something else and took the wrong path.",
        "signals": ["trajectory diverges from the golden run early", "routing decision to an unexpected branch"],
        "detectors": [],
        "default_severity": "SEV3",
        "runbook": [
            {"phase": CONTAIN, "text": "Route the affected input class to the fallback or a person"},
            {"phase": ASSESS, "text": "Find the routing/decision step and what in the input misled it"},
            {"phase": REMEDIATE, "text": "Fix the classifier or routing; verify on the captured inputs"},
            {"phase": LEARN, "text": "Add the misread inputs as eval cases"},
        ],
    },
    {
        "slug": "context-drift",
        "name": "Context drift",
        "description": "Over a long session the agent loses the task: stale, truncated or crowded-out context.",
        "signals": ["finish reason 'length' (truncation)", "context growing step over step", "answers to old turns"],
        "detectors": ["truncation", "context_growth"],
        "default_severity": "SEV3",
        "runbook": [
            {"phase": CONTAIN, "text": "Cap session length; pause if answers affect production data"},
            {"phase": ASSESS, "text": "Find where the task fell out of context; check token-budget pressure"},
            {"phase": REMEDIATE, "text": "Summarize or window the context; raise or enforce the token budget"},
            {"phase": LEARN, "text": "Capture a long-session eval case"},
        ],
    },
    {
        "slug": "multi-agent-coordination",
        "name": "Multi-agent coordination failure",
        "description": "Agents hand work back and forth, duplicate it or wait on each other forever.",
        "signals": ["two agents bouncing the same request (ping-pong)", "hand-off count above normal"],
        "detectors": ["ping_pong"],
        "default_severity": "SEV2",
        "runbook": [
            {"phase": CONTAIN, "text": "Pause the agents in the loop; stop the fleet if the loop spreads"},
            {"phase": ASSESS, "text": "Trace the hand-offs; measure spend and affected sessions"},
            {"phase": REMEDIATE, "text": "Add a hand-off limit and an owner for each request"},
            {"phase": LEARN, "text": "Capture the bouncing request as an eval case"},
        ],
    },
]

POSTMORTEM_TEMPLATES = [
    {
        "slug": "sev1-agent",
        "name": "SEV1 agent incident",
        "description": "For an agent that acted on production, corrupted data or exposed information.",
        "default_for": ["SEV1"],
        "sections": [
            {
                "key": "what",
                "title": "What did the agent do?",
                "prompt": "The actions it took, in order, and their external effects. Trust the tool calls.",
            },
            {
                "key": "why",
                "title": "Why did it do it?",
                "prompt": "What in the prompt, the context or the retrieved content led it there?",
            },
            {
                "key": "guardrails",
                "title": "Why did the guardrails not catch it?",
                "prompt": "Which check should have fired, and why did it not?",
            },
            {
                "key": "blast_radius",
                "title": "Blast radius, and is it remediated?",
                "prompt": "Trajectories, users and records affected; what was reverted and verified.",
            },
            {
                "key": "prevention",
                "title": "Which structural guardrail change prevents recurrence?",
                "prompt": "An eval case, a canary, a circuit breaker, a version pin, a permission change.",
            },
        ],
    },
    {
        "slug": "ai-questions",
        "name": "Agent failure questions",
        "description": "The questions specific to AI agents, for any severity.",
        "default_for": ["SEV2"],
        "sections": [
            {
                "key": "what_changed",
                "title": "What changed?",
                "prompt": "Model version, prompt version, tool definitions, retrieval index.",
            },
            {"key": "retrieval", "title": "What was the retrieval context?", "prompt": "What did the agent see?"},
            {
                "key": "budget",
                "title": "Was there token-budget pressure?",
                "prompt": "Any finish reason 'length'? How close to the context window?",
            },
            {
                "key": "tool_calls",
                "title": "Which tool calls, in which order, returned what?",
                "prompt": "From the attached trajectory.",
            },
            {
                "key": "evals",
                "title": "Would the eval suite have caught it?",
                "prompt": "If not, which case is now added?",
            },
            {
                "key": "prevention",
                "title": "Corrective actions",
                "prompt": "Engineering artifacts, not 'improve the prompt'.",
            },
        ],
    },
    {
        "slug": "standard",
        "name": "Standard post-mortem",
        "description": "The classic blameless review.",
        "default_for": ["SEV3"],
        "sections": [
            {"key": "summary", "title": "Summary", "prompt": "Two or three sentences."},
            {"key": "impact", "title": "Impact", "prompt": "Who and what was affected, for how long."},
            {"key": "timeline", "title": "Timeline", "prompt": "Filled from the incident timeline; add context."},
            {"key": "trigger", "title": "Proximate trigger", "prompt": "What set it off."},
            {"key": "systemic_gap", "title": "Systemic gap", "prompt": "What let the trigger become an incident."},
            {"key": "went_well", "title": "What went well", "prompt": ""},
            {"key": "went_badly", "title": "What went badly", "prompt": ""},
        ],
    },
]


def taxonomy_seed(apps) -> None:
    """Create or refresh the failure classes and templates (used by a migration and the browser tests)."""
    failure_class = apps.get_model("incidents", "FailureClass")
    template = apps.get_model("incidents", "PostMortemTemplate")
    for order, fc in enumerate(FAILURE_CLASSES):
        failure_class.objects.update_or_create(slug=fc["slug"], defaults={**fc, "order": order})
    for order, tpl in enumerate(POSTMORTEM_TEMPLATES):
        template.objects.update_or_create(slug=tpl["slug"], defaults={**tpl, "order": order})
