"""Operations endpoints of docs/spec.md §9: `/healthz`, `/readyz` and `/metrics`."""

from __future__ import annotations

import asyncio
from pathlib import Path
from typing import Any

from prometheus_client import CONTENT_TYPE_LATEST, CollectorRegistry, generate_latest
from prometheus_client.multiprocess import MultiProcessCollector
from redis.exceptions import RedisError
from starlette.requests import Request
from starlette.responses import JSONResponse, Response
from starlette.routing import Route

from bot.observability import CASES, QUEUE_DEPTH, STORE_UP
from bot.settings import Settings
from bot.store import case_queries, keys

STORE_CHECK_SECONDS = 1.0
MULTIPROCESS_DIR = "PROMETHEUS_MULTIPROC_DIR"
"""prometheus_client's own variable (not a helpline setting): `helpline serve --workers N`
sets it for its workers, whose metrics then live in files there."""


def _redis(request: Request) -> Any:
    return request.app.state.store.redis


async def healthz(_: Request) -> Response:
    """The process is up (no dependency checked)."""
    return JSONResponse({"status": "ok"})


async def readyz(request: Request) -> Response:
    """Redis answers: the process can serve conversations."""
    try:
        async with asyncio.timeout(STORE_CHECK_SECONDS):
            await _redis(request).ping()
    except (RedisError, OSError, TimeoutError):
        return JSONResponse({"status": "unavailable", "redis": "down"}, status_code=503)
    return JSONResponse({"status": "ready", "redis": "up"})


async def refresh_store_gauges(redis: Any) -> None:
    """Cases by kind and the worker's queue depth, read from Redis at scrape time."""
    try:
        async with asyncio.timeout(STORE_CHECK_SECONDS):
            by_kind, ready, delayed = await asyncio.gather(
                case_queries.count_by_kind(redis),
                redis.xlen(keys.jobs_stream()),  # jobs waiting or running
                redis.zcard(keys.jobs_delayed()))  # retries waiting for their time
    except (RedisError, OSError, TimeoutError):
        STORE_UP.set(0)
        return
    STORE_UP.set(1)
    for kind, count in by_kind.items():
        CASES.labels(kind).set(count)
    QUEUE_DEPTH.set(int(ready) + int(delayed))


async def metrics(request: Request) -> Response:
    await refresh_store_gauges(_redis(request))
    settings: Settings = request.app.state.settings
    return Response(exposition(settings.metrics_dir), media_type=CONTENT_TYPE_LATEST)


def exposition(metrics_dir: Path | None) -> bytes:
    """This process's metrics; with several workers (`metrics_dir` shared by them), all
    of theirs (counters summed)."""
    if metrics_dir is None:
        return bytes(generate_latest())
    registry = CollectorRegistry()
    MultiProcessCollector(registry)  # type: ignore[no-untyped-call]
    return bytes(generate_latest(registry))


ROUTES = [
    Route("/healthz", healthz, methods=["GET"]),
    Route("/readyz", readyz, methods=["GET"]),
    Route("/metrics", metrics, methods=["GET"]),
]
