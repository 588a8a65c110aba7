"""Scheduled detectors (Celery beat): each looks at one agent's recent traffic against its baseline.

Importing this package registers them in ``incidents.detection.base.registry``.
"""

from incidents.detection.scheduled import (  # noqa: F401
    embedding_drift,
    judge_score,
    length_drift,
    refusal_shift,
    tool_error_spike,
)
