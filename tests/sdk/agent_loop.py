"""A stand-in agent process for the tests: configure the gate from the environment, then loop on check().

Usage: python agent_loop.py <agent-slug> <max_staleness>. Prints "ready" after the first check passes;
exits only through an uncaught exception (AgentKilled when the kill lands), as a real agent would.
"""

import sys

from firebreak_sdk import Gate

gate = Gate.from_env(sys.argv[1], max_staleness=float(sys.argv[2]))
gate.check()
print("ready", flush=True)
while True:
    gate.check()
