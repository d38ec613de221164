"""`helpline operators …` and `helpline cases …`."""

from __future__ import annotations

import argparse


def register(commands: argparse._SubParsersAction[argparse.ArgumentParser]) -> None:
    """Operators and cases commands are registered here."""
