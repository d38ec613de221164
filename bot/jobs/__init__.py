"""Background work (SPEC §8): outbound SMS, confirmations, on-call notices, SLA, retention.

`worker.py` wires the arq worker; each other module holds one kind of job.
Jobs carry references and ids only and read the rest when they run.
"""
