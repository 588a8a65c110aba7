"""Detectors: each a pure function of the data it reads, one module each, plus thin tasks.

A streaming detector looks at the traces of one committed batch; a scheduled
detector (beat) looks at an agent's recent traffic. Both return ``Finding``s;
``incidents.detection.engine.findings_handle`` turns each into a deduplicated
Alert and applies the detector's rule (notify, pause the agent, declare an incident).

Importing the package registers every detector (the ``streaming`` and ``scheduled``
packages), so ``registry`` is complete for whoever reads it.
"""

from incidents.detection import scheduled, streaming  # noqa: F401  (registers the detectors)
from incidents.detection.base import Finding, Rule, registry, threshold  # noqa: F401
