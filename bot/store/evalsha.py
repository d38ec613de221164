"""Lua scripts sent by digest (EVALSHA): see bot.store.scripts (kept for its names)."""

from __future__ import annotations

from bot.store.scripts import Script, unknown_script

ShaScript = Script

__all__ = ["ShaScript", "unknown_script"]
