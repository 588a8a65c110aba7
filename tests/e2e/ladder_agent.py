"""A simulated agent for the issue 15 gate tests: answers by level, honours the pin and blocks.

Loops behind the SDK's gate and prints a JSON line each time what it sees changes: the handler
``gate.by_level`` picked, ``gate.pinned``, and for each session given on the command line "ok" or
"Blocked" from ``gate.check(session=...)``. Usage: ladder_agent.py <agent> <redis-url> <session>...
"""

import json
import sys
import time

from firebreak_sdk import Blocked, FirebreakStop, Gate

HANDLERS = {"full": "run_agent", "retrieval": "answer_from_docs", "static": "canned"}


def main() -> int:
    agent, redis_url, sessions = sys.argv[1], sys.argv[2], sys.argv[3:]
    last = None
    with Gate(agent, redis_url=redis_url) as gate:
        handlers = {level: (lambda name=name: name) for level, name in HANDLERS.items()}
        try:
            while True:
                seen: dict[str, object] = {"level": gate.level, "handler": gate.by_level(handlers)()}
                seen["pinned"] = gate.pinned
                for session in sessions:
                    try:
                        gate.check(session=session)
                        seen[session] = "ok"
                    except Blocked:
                        seen[session] = "Blocked"
                if seen != last:
                    print(json.dumps(seen), flush=True)
                    last = seen
                time.sleep(0.005)  # one "step"
        except FirebreakStop as exc:
            print(json.dumps({"stopped": type(exc).__name__}), flush=True)
            return 3


if __name__ == "__main__":
    sys.exit(main())
