"""`helpline worker` refuses to start, with one clear line a problem, when it cannot work."""

from __future__ import annotations

import os
import subprocess
import sys
from pathlib import Path

REQUIRED_IN_PROD = ["REDIS_URL", "TWILIO_AUTH_TOKEN", "HELPLINE_PUBLIC_URL",
                    "HELPLINE_USSD_SECRET", "HELPLINE_PII_KEY"]


def worker(tmp_path: Path, **env: str) -> subprocess.CompletedProcess[str]:
    clean = {k: v for k, v in os.environ.items()
             if k not in REQUIRED_IN_PROD and not k.startswith(("HELPLINE_", "TWILIO_"))}
    return subprocess.run([sys.executable, "-m", "bot.cli", "worker"], cwd=tmp_path,
                          env={**clean, "HELPLINE_DATA_DIR": str(tmp_path / "var"), **env},
                          capture_output=True, text=True, timeout=60)


def test_prod_without_its_settings_names_each_missing_one(tmp_path: Path) -> None:
    done = worker(tmp_path, HELPLINE_ENV="prod", HELPLINE_PUBLIC_URL="https://h.example")
    assert done.returncode == 2
    missing = [name for name in REQUIRED_IN_PROD if name != "HELPLINE_PUBLIC_URL"]
    assert done.stderr.splitlines() == [f"HELPLINE_ENV=prod requires {name}" for name in missing]
    assert not (tmp_path / "var").exists()  # refused before touching anything



def test_primero_settings_come_all_three_or_not_at_all(tmp_path: Path) -> None:
    done = worker(tmp_path, PRIMERO_URL="https://primero.example", PRIMERO_PASSWORD="s3cret-pw")
    assert done.returncode == 2
    assert done.stderr.splitlines() == [
        "PRIMERO_URL, PRIMERO_USER, PRIMERO_PASSWORD go together (all three or none): "
        "PRIMERO_USER missing"]
    assert "s3cret-pw" not in done.stderr
    done = worker(tmp_path, PRIMERO_URL="https://primero.example", PRIMERO_USER="helpline",
                  PRIMERO_PASSWORD="s3cret-pw")
    assert done.returncode == 2
    assert done.stderr.splitlines() == [
        "HELPLINE_ORG_NAME is required with PRIMERO_URL (the agency Primero names as the "
        "case's source)"]
    assert not (tmp_path / "var").exists()
