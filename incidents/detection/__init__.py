"""Detectors: each a pure function of the data it reads, one module each, plus thin tasks.

A streaming detector looks at the traces of one committed batch; a scheduled
detector (beat) looks at an agent's recent traffic. Both return ``Finding``s;
``incidents.detection.engine.findings_handle`` turns each into a deduplicated
Alert and applies the detector's rule (notify, pause the agent, declare an incident).

``IncidentsConfig.ready()`` imports the ``streaming`` and ``scheduled`` packages, which
registers every detector in ``registry``.
"""

from incidents.detection.base import Finding, Rule, registry, threshold  # noqa: F401
