"""Background work (docs/spec.md §8): outbound SMS, confirmations, on-call, SLA, retention.

`worker.py` runs the jobs on taskiq (`broker.py`, `queue.py`: the queue on Redis);
each other module holds one kind of job.
Jobs carry references and ids only and read the rest when they run.
"""
