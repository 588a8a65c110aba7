"""A simulated agent for the browser tests: loops over its steps behind the SDK's gate.

Prints "ready" once its first check passed, then on a closed gate prints the
exception's class and reason and exits 3. Usage: agent_process.py <agent> <redis-url>
"""

import sys
import time

from firebreak_sdk import Gate, GateClosed


def main() -> int:
    agent, redis_url = sys.argv[1], sys.argv[2]
    with Gate(agent, redis_url=redis_url) as gate:
        gate.begin_run()
        print("ready", flush=True)
        try:
            while True:
                gate.check()
                gate.check(tool="search")
                time.sleep(0.001)  # one "step"
        except GateClosed as exc:
            print(f"{type(exc).__name__} {exc.reason}", flush=True)
            return 3


if __name__ == "__main__":
    sys.exit(main())
