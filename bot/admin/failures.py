"""How the admin API answers what is not a domain error: bad input, a store that is away.

- Bad input ⇒ 422 naming each field (`loc`), never echoing the value: a
  value may be personal data, or text that cannot even be encoded (a lone
  surrogate), and an answer that fails to encode is a 500.
- Redis unreachable, frozen or failing over ⇒ 503 with `Retry-After`.
"""

from __future__ import annotations

import json
import logging
import re
from functools import cache
from typing import Any

from fastapi import FastAPI, Request, status
from fastapi.exceptions import RequestValidationError
from fastapi.responses import JSONResponse
from pydantic import BaseModel
from redis.exceptions import (
    ClusterDownError,
    ConnectionError,
    ReadOnlyError,
    TimeoutError,
    TryAgainError,
)
from starlette.exceptions import HTTPException as StarletteHTTPException

log = logging.getLogger(__name__)

STORE_RETRY_AFTER_SECONDS = 5
STORE_DOWN = (ConnectionError, TimeoutError, ReadOnlyError, ClusterDownError, TryAgainError)
"""What redis-py raises while the server is away, frozen or failing over (not a bug of ours)."""


class Problem(BaseModel):
    """Why a request was refused, in plain words."""

    detail: str


_RETRY_AFTER = {"Retry-After": {"description": "Seconds to wait before trying again",
                                "schema": {"type": "integer"}}}
Responses = dict[int | str, dict[str, Any]]
ANY_REQUEST: Responses = {
    401: {"model": Problem, "description": "Missing, unknown or revoked token"},
    403: {"model": Problem, "description": "The token's role may not do this"},
    429: {"model": Problem, "headers": _RETRY_AFTER,
          "description": "Too many wrong tokens from this address"},
    503: {"model": Problem, "headers": _RETRY_AFTER,
          "description": "The case store is unavailable (Redis down or failing over)"},
}
"""Answers any admin request may get, whatever its route: in every route's OpenAPI."""
WITH_BODY: Responses = {
    413: {"model": Problem, "description": "Request body over 64 KiB"},
}
"""Also possible for requests with a body."""


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


_TEMPLATE_PARAMETER = re.compile(r"\\\{[^/]+?\\\}")


@cache
def _operations(document: str) -> list[tuple[re.Pattern[str], bool, frozenset[str]]]:
    """(path regex, literal?, methods) of each path of an OpenAPI document (JSON)."""
    paths: dict[str, dict[str, Any]] = json.loads(document)["paths"]
    return [
        (re.compile("^" + _TEMPLATE_PARAMETER.sub("[^/]+", re.escape(path)) + "$"),
         "{" not in path, frozenset(method.upper() for method in operations))
        for path, operations in paths.items()
    ]


def allowed_methods(app: FastAPI, path: str) -> list[str]:
    """The methods the OpenAPI document gives this path (a literal path wins over templates)."""
    found = [(literal, methods)
             for pattern, literal, methods in _operations(json.dumps(app.openapi()))
             if pattern.match(path)]
    literal = [methods for is_literal, methods in found if is_literal]
    return sorted(set().union(*(literal or [methods for _, methods in found])))


async def http_error(request: Request, exc: Exception) -> JSONResponse:
    """Starlette's HTTP errors as FastAPI answers them; a 405 names every allowed method.

    Starlette's own 405 names only the first route matching the path, though
    others (PATCH, DELETE of the same case) serve it too.
    """
    assert isinstance(exc, StarletteHTTPException)
    headers = dict(exc.headers or {})
    if exc.status_code == status.HTTP_405_METHOD_NOT_ALLOWED:
        allowed = allowed_methods(request.app, request.url.path)
        if allowed:
            headers["Allow"] = ", ".join(allowed)
    if exc.status_code in (status.HTTP_204_NO_CONTENT, status.HTTP_304_NOT_MODIFIED):
        return JSONResponse(status_code=exc.status_code, content=None, headers=headers)
    return JSONResponse(status_code=exc.status_code, content={"detail": exc.detail},
                        headers=headers)


def add_failure_handlers(app: FastAPI) -> None:
    app.add_exception_handler(StarletteHTTPException, http_error)
    app.add_exception_handler(RequestValidationError, invalid_input)
    for failure in STORE_DOWN:
        app.add_exception_handler(failure, store_unavailable)
