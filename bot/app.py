"""The web app: `create_app(settings)` wires the store, the routers and the limits."""

from __future__ import annotations

import asyncio
import contextlib
import logging
from collections.abc import AsyncIterator, Callable
from contextlib import asynccontextmanager
from datetime import datetime

from fastapi import FastAPI
from starlette.types import Receive, Scope, Send

from bot import probes
from bot.admin import api as admin_api
from bot.admin.console import mount_console
from bot.admin.failures import add_failure_handlers
from bot.admin.headers import AdminHeaders
from bot.admin.limits import MAX_BODY_BYTES
from bot.cases.jobs import CaseJobs
from bot.channels import routes as webhooks
from bot.channels import twilio_status
from bot.channels.gateway import Gateway
from bot.channels.voice_routes import AUDIO_ROUTES
from bot.conversation.loop import utcnow
from bot.errors import ProdSettingsMissing
from bot.jobs.queue import JobQueue
from bot.observability import AccessLog
from bot.settings import Env, Settings
from bot.store import supervision
from bot.store.connection import open_store

log = logging.getLogger(__name__)


def require_prod_settings(settings: Settings) -> None:
    """docs/spec.md §3: in prod, refuse to start without every required setting."""
    missing = settings.missing_for_prod() if settings.env is Env.PROD else []
    if missing:
        raise ProdSettingsMissing(missing)


class HelplineApp(FastAPI):
    """FastAPI, with the gateway lane in front of its whole stack.

    A request to a webhook path goes straight to `Gateway.serve` (no middleware,
    no router); everything else (admin API, console, probes) is FastAPI's.
    """

    gateway: Gateway

    async def __call__(self, scope: Scope, receive: Receive, send: Send) -> None:
        if scope["type"] == "http":
            route = self.gateway.paths.get(scope["path"])
            if route is not None:
                scope["app"] = self
                await self.gateway.serve(route, scope, receive, send)
                return
        await super().__call__(scope, receive, send)


def create_app(settings: Settings, *, case_jobs: CaseJobs | None = None,
               clock: Callable[[], datetime] = utcnow) -> HelplineApp:
    """The helpline's web app. `case_jobs` replaces the job queue, `clock` the time of what
    the webhooks record (tests)."""
    require_prod_settings(settings)

    @asynccontextmanager
    async def lifespan(app: FastAPI) -> AsyncIterator[None]:
        store = open_store(settings)
        app.state.settings = settings
        app.state.store = store
        app.state.case_jobs = case_jobs or JobQueue.open(settings, store)
        app.state.webhooks = webhooks.make_webhooks(settings, store.scripts, clock=clock)
        app.state.webhooks.delivery = twilio_status.delivery_recorder(
            store.redis, clock=clock, jobs=app.state.case_jobs,
            followup_ttl=settings.followup_ttl)
        supervisor = (asyncio.create_task(supervision.supervise(store.embedded))
                      if store.embedded is not None else None)
        gateway.hooks = app.state.webhooks
        await app.state.webhooks.conversation.start()
        app.state.webhooks.statuses_waiting.resume()
        try:
            yield
        finally:
            gateway.access.flush()
            if supervisor is not None:
                supervisor.cancel()
                with contextlib.suppress(asyncio.CancelledError):
                    await supervisor
            await app.state.webhooks.aclose()
            await app.state.case_jobs.close()
            await store.close()

    # /docs and /redoc load their scripts from a CDN: off in prod. /openapi.json stays
    # (the console reads its schemas).
    docs = settings.env is not Env.PROD
    app = HelplineApp(title="Migrant helpline", version="1", lifespan=lifespan,
                      max_body_size=MAX_BODY_BYTES,
                      docs_url="/docs" if docs else None, redoc_url="/redoc" if docs else None)
    app.include_router(admin_api.router, prefix=admin_api.PREFIX)
    admin_api.add_error_handlers(app)
    add_failure_handlers(app)
    mount_console(app)
    # The webhooks are served by the gateway lane, in front of all this.
    gateway = app.gateway = Gateway(webhooks.ROUTES)
    app.router.routes[0:0] = [*gateway.router_routes(), *probes.ROUTES, *AUDIO_ROUTES]
    app.add_middleware(AdminHeaders)
    app.add_middleware(AccessLog)
    return app
