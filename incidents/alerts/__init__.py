"""Alerts: raised by detectors, evals and canaries (``alert_raise``, deduplicated by fingerprint),
acknowledged and resolved by responders, and the per-detector settings admins edit."""
