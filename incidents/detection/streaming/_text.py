"""What two streaming detectors look for in a step's output, tested where ingest has the text in hand.

The worker reads no output text: ``runner.batch_steps_pack`` packs, for each step of a trace the batch created,
whether its output refuses (an LLM step: ``refusal_burst``) and whether it carries instructions (a tool or
retrieval step: ``injection``). The traces it did not pack are matched in PostgreSQL with the same regexes
(``~*``); a test holds the two sides to the same answers.
"""

import re

from incidents.detection.scheduled.rollup import REFUSAL_RE

# Phrases that instruct the model rather than inform it; matched case-insensitively in tool/retrieval output.
INJECTION_RE = (
    r"(ignore|disregard|forget) (all |the )?(previous|prior|above) (instructions|rules|prompts?)"
    r"|you are (now )?in (maintenance|developer|debug) mode"
    r"|new instructions:|system prompt:|<\|im_start\|>system"
)

# PostgreSQL's \M (the end of a word) is Python's \b where REFUSAL_RE uses it: a word character comes before.
_REFUSAL = re.compile(REFUSAL_RE.replace(r"\M", r"\b"), re.IGNORECASE)
_INJECTION = re.compile(INJECTION_RE, re.IGNORECASE)
# Every match of INJECTION_RE holds one of these, lower-cased: a look that costs far less than the regex.
_INJECTION_NEEDLES = ("ignore", "disregard", "forget", " mode", "instructions:", "system prompt:", "im_start|>system")
# Letters re.IGNORECASE matches to ASCII ones that str.lower() leaves apart (long s, dotless and dotted i, Kelvin).
_FOLD = str.maketrans({"\u017f": "s", "\u0131": "i", "\u0130": "i", "\u212a": "k"})


def output_refuses(text: str) -> bool:
    """An LLM output that starts with a refusal (REFUSAL_RE)."""
    return _REFUSAL.match(text) is not None


def output_instructs(text: str) -> bool:
    """A tool or retrieval output that reads like instructions to the model (INJECTION_RE)."""
    folded = (text if text.isascii() else text.translate(_FOLD)).lower()
    return any(needle in folded for needle in _INJECTION_NEEDLES) and _INJECTION.search(text) is not None
