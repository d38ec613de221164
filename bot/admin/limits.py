"""Limits of admin requests (SPEC §7): the body size, enforced by FastAPI's `max_body_size`."""

MAX_BODY_BYTES = 64 * 1024
"""Past this, read or declared (chunked bodies too), the answer is 413."""
