"""``python -m firebreak_sdk.gateways.llm``: the same as ``firebreak-llm-gateway``."""

import sys

from .cli import main

sys.exit(main())
