"""How the admin API answers what is not a domain error: bad input, a store that is away.

- Bad input ⇒ 422 naming each field (`loc`), never echoing the value: a
  value may be personal data, or text that cannot even be encoded (a lone
  surrogate), and an answer that fails to encode is a 500.
- Redis unreachable, frozen or failing over ⇒ 503 with `Retry-After`.
"""

from __future__ import annotations

import logging
from typing import Any

from fastapi import FastAPI, Request, status
from fastapi.exceptions import RequestValidationError
from fastapi.responses import JSONResponse
from redis.exceptions import (
    ClusterDownError,
    ConnectionError,
    ReadOnlyError,
    TimeoutError,
    TryAgainError,
)

log = logging.getLogger(__name__)

STORE_RETRY_AFTER_SECONDS = 5
STORE_DOWN = (ConnectionError, TimeoutError, ReadOnlyError, ClusterDownError, TryAgainError)
"""What redis-py raises while the server is away, frozen or failing over (not a bug of ours)."""


def _field_error(error: Any) -> dict[str, Any]:
    return {
        "loc": [part for part in error.get("loc", ()) if isinstance(part, str | int)],
        "msg": str(error.get("msg", "invalid")),
        "type": str(error.get("type", "value_error")),
    }


async def invalid_input(_: Request, exc: Exception) -> JSONResponse:
    assert isinstance(exc, RequestValidationError)
    return JSONResponse(status_code=status.HTTP_422_UNPROCESSABLE_CONTENT,
                        content={"detail": [_field_error(error) for error in exc.errors()]})


async def store_unavailable(request: Request, exc: Exception) -> JSONResponse:
    log.warning("admin request refused: store unavailable",
                extra={"error": type(exc).__name__, "path": request.url.path})
    return JSONResponse(
        status_code=status.HTTP_503_SERVICE_UNAVAILABLE,
        content={"detail": "the case store is unavailable; try again shortly"},
        headers={"Retry-After": str(STORE_RETRY_AFTER_SECONDS)},
    )


def add_failure_handlers(app: FastAPI) -> None:
    app.add_exception_handler(RequestValidationError, invalid_input)
    for failure in STORE_DOWN:
        app.add_exception_handler(failure, store_unavailable)
