"""Parsers: one per wire format, each turning a request body into validated ``Span`` objects.

``native`` reads Firebreak's JSON batch (``POST /api/v1/ingest``), ``otlp`` reads OTLP/HTTP protobuf and JSON
(``POST /v1/traces``). A parser writes nothing; it raises ``IngestError`` naming the first bad field.
"""
