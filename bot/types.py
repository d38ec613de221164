"""Small shared value types."""

from __future__ import annotations

from enum import StrEnum


class Channel(StrEnum):
    USSD = "ussd"
    SMS = "sms"
    VOICE = "voice"
