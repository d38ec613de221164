"""Admin routes authenticate and authorise before FastAPI reads the body.

FastAPI parses a JSON body before it runs dependencies, so without this a
caller with no token and a malformed body would learn of a 422 instead of
getting the 401 (or 403) that docs/spec.md §7 puts first.
"""

from __future__ import annotations

import json
from collections.abc import Callable, Coroutine, Iterator
from typing import Any

from fastapi import Request, Response
from fastapi.dependencies.models import Dependant
from fastapi.exceptions import RequestValidationError
from fastapi.routing import APIRoute
from starlette.convertors import Convertor, register_url_convertor

from bot.admin.operators import Role

from .deps import ROLE_OF_CHECK, authenticate, authorise
from .failures import ANY_REQUEST, WITH_BODY

BEARER = "bearer "


class CaseReferenceSegment(Convertor[str]):
    """`{reference:case_reference}`: any path segment but a sibling literal (`export.csv`).

    As in OpenAPI, a literal path wins over a template: `PATCH /cases/export.csv`
    is a 405 (export is GET only), not a PATCH of a case named "export.csv".
    Malformed references still reach the route, which answers 422 naming them.
    """

    regex = r"(?!export\.csv$)[^/]+"

    def convert(self, value: str) -> str:
        return value

    def to_string(self, value: str) -> str:
        return value


register_url_convertor("case_reference", CaseReferenceSegment())


def _calls(dependant: Dependant) -> Iterator[Any]:
    for dependency in dependant.dependencies:
        yield dependency.call
        yield from _calls(dependency)


def needed_role(dependant: Dependant) -> Role | None:
    roles = [ROLE_OF_CHECK[call] for call in _calls(dependant) if call in ROLE_OF_CHECK]
    return max(roles, key=list(Role).index) if roles else None


BODY_METHODS = frozenset({"POST", "PUT", "PATCH"})


class AuthorisedRoute(APIRoute):
    def __init__(self, path: str, endpoint: Callable[..., Any], **options: Any) -> None:
        # Every admin route documents the answers any request may get (OpenAPI, docs/spec.md §7).
        common = dict(ANY_REQUEST)
        if BODY_METHODS & set(options.get("methods") or ()):
            common |= WITH_BODY
        options["responses"] = common | dict(options.get("responses") or {})
        super().__init__(path, endpoint, **options)

    def get_route_handler(self) -> Callable[[Request], Coroutine[Any, Any, Response]]:
        handle = super().get_route_handler()
        role = needed_role(self.dependant)
        if role is None:
            return handle

        async def authorised(request: Request) -> Response:
            header = request.headers.get("authorization", "")
            token = header[len(BEARER) :].strip() if header.lower().startswith(BEARER) else None
            authorise(await authenticate(request, token or None), role)
            if self.body_field is not None:
                await refuse_unreadable_json(request)
            return await handle(request)

        return authorised


async def refuse_unreadable_json(request: Request) -> None:
    """422 for JSON FastAPI would answer 400 to: too deep, not UTF-8, a number too long.

    The body is read once: FastAPI reuses the bytes `request.body()` cached.
    """
    body = await request.body()
    if not body:
        return
    try:
        json.loads(body)
    except RecursionError:
        problem = "JSON nested too deeply"
    except UnicodeDecodeError:
        problem = "the body is not UTF-8"
    except json.JSONDecodeError:
        return  # FastAPI answers 422 with the position of the syntax error
    except ValueError:
        problem = "a number in the JSON is too long"  # past Python's int digits limit
    else:
        return
    raise RequestValidationError([{"type": "json_invalid", "loc": ("body",), "msg": problem}])
