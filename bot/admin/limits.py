"""Limits of admin requests (docs/spec.md §7): the body size, by FastAPI's `max_body_size`."""

MAX_BODY_BYTES = 64 * 1024
"""Past this, read or declared (chunked bodies too), the answer is 413."""
