"""The ingest pipeline behind ``traces.services.trace_ingest`` (the HTTP views are in ``traces.api``).

- ``parse/``: a request body in one wire format → a list of ``Span`` (validated; nothing written).
- ``spans``: ``Span``, the one shape every format is parsed into, and ``IngestError`` (bad input, with a status).
- ``normalize``: redaction of sensitive values and the action hash, applied to every span before it is written.
- ``writer``: the COPY writer: a normalized batch into traces_trace / traces_step, in the caller's transaction.
"""
