"""A simulated agent process for the budget tests: runs behind the SDK's gate and budget guard, one command a line.

Commands on stdin: ``begin <run>`` (a new run: ``gate.begin_run()`` and a ``BudgetGuard``), ``step <run> <cost>``
(``gate.check()``, then the guard's ``before_model_call`` and ``record`` of one model call costing ``cost``).
Answers one line each: ``ok <json>`` (the run's caps and spend), or the exception's class and message.
Usage: budget_agent.py <agent> <redis-url>
"""

import json
import sys

from firebreak_sdk import BudgetGuard, FirebreakStop, Gate


def main() -> int:
    agent, redis_url = sys.argv[1], sys.argv[2]
    runs: dict[str, BudgetGuard] = {}
    with Gate(agent, redis_url=redis_url) as gate:
        print("ready", flush=True)
        for line in sys.stdin:
            command, run, *rest = line.split()
            try:
                if command == "begin":
                    gate.begin_run()
                    runs[run] = BudgetGuard(gate)
                else:
                    gate.check()
                    cost = float(rest[0])
                    runs[run].before_model_call(estimated_cost=cost)
                    runs[run].record(cost=cost)
                answer = {"caps": runs[run].caps, "spent": round(runs[run].spent, 6)}
                print("ok", json.dumps(answer), flush=True)
            except FirebreakStop as exc:
                print(type(exc).__name__, exc, flush=True)
    return 0


if __name__ == "__main__":
    sys.exit(main())
