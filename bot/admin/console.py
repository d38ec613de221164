"""The operator web console at `/admin/`: static files, no build step, strict headers."""

from __future__ import annotations

from pathlib import Path

from fastapi import APIRouter, FastAPI
from fastapi.responses import FileResponse, RedirectResponse
from starlette.staticfiles import StaticFiles

CONSOLE_DIR = Path(__file__).parent / "console"
# The console loads only its own files; the token never leaves for another origin.
SECURITY_HEADERS = {
    "Content-Security-Policy": "default-src 'self'; frame-ancestors 'none'; base-uri 'none'",
    "X-Frame-Options": "DENY",
    "Referrer-Policy": "no-referrer",
    "X-Content-Type-Options": "nosniff",
    "Cache-Control": "no-store",
}

router = APIRouter(include_in_schema=False)


@router.get("/admin")
async def console_root() -> RedirectResponse:
    return RedirectResponse("/admin/")


@router.get("/admin/")
async def console_page() -> FileResponse:
    return FileResponse(CONSOLE_DIR / "index.html", headers=SECURITY_HEADERS)


def mount_console(app: FastAPI) -> None:
    app.include_router(router)
    app.mount("/admin/static", StaticFiles(directory=CONSOLE_DIR), name="console-static")
