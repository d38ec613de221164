"""The installs are the lock's (docs/install.md): what runs the tests is exactly `uv.lock`."""

from __future__ import annotations

import re
import shutil
import subprocess
import tomllib
from importlib import metadata
from pathlib import Path

import pytest

ROOT = Path(__file__).resolve().parents[2]
UV = ROOT / ".uv" / "bin" / "uv"


def canonicalize_name(name: str) -> str:
    """PEP 503's normal form of a distribution name."""
    return re.sub(r"[-_.]+", "-", name).lower()


def locked_versions() -> dict[str, str]:
    lock = tomllib.loads((ROOT / "uv.lock").read_text(encoding="utf-8"))
    return {canonicalize_name(p["name"]): p["version"] for p in lock["package"]}


def test_every_installed_distribution_is_the_locked_version() -> None:
    locked = locked_versions()
    installed = {
        canonicalize_name(d.metadata["Name"]): d.version for d in metadata.distributions()
    }
    not_locked = sorted(set(installed) - set(locked))
    assert not_locked == [], f"installed but not in uv.lock: {not_locked}"
    moved = {n: (v, locked[n]) for n, v in installed.items() if locked[n] != v}
    assert moved == {}, f"installed version != locked version: {moved}"


def test_one_uv_version_everywhere() -> None:
    pyproject = tomllib.loads((ROOT / "pyproject.toml").read_text(encoding="utf-8"))
    required = pyproject["tool"]["uv"]["required-version"].removeprefix("==")
    ci = re.search(r"^UV_VERSION=(\S+)", (ROOT / ".ci/run").read_text(), re.M)
    readme_first_block = (ROOT / "README.md").read_text().split("```")[1]
    assert ci is not None and ci.group(1) == required
    assert f"uv=={required}" in readme_first_block


@pytest.mark.skipif(not UV.exists(), reason="needs .uv/bin/uv, which .ci/run installs")
def test_lock_check_fails_when_a_dependency_is_added(tmp_path: Path) -> None:
    for name in ("pyproject.toml", "uv.lock"):
        shutil.copy(ROOT / name, tmp_path / name)
    check = [str(UV), "lock", "--check", "--directory", str(tmp_path)]
    assert subprocess.run(check, capture_output=True).returncode == 0

    pyproject = tmp_path / "pyproject.toml"
    text = pyproject.read_text()
    added = 'dependencies = [\n    "requests",\n'  # a package the lock holds as twilio's
    pyproject.write_text(text.replace("dependencies = [\n", added, 1))
    stale = subprocess.run(check, capture_output=True, text=True)
    assert stale.returncode != 0
    assert "added: requests" in stale.stderr
