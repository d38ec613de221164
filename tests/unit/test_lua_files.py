"""The Lua scripts: whole files under bot/store/lua/, each loaded by one module, none in Python."""

from __future__ import annotations

import re
from pathlib import Path

import pytest

from bot.store.scripts import LUA

BOT = Path(__file__).resolve().parents[2] / "bot"
FILES = sorted(LUA.glob("*.lua"))


def _header(source: str) -> str:
    lines = source.splitlines()
    count = next(index for index, line in enumerate(lines) if not line.startswith("--"))
    return "\n".join(lines[:count])


def _loads() -> dict[str, list[Path]]:
    found: dict[str, list[Path]] = {}
    for module in BOT.rglob("*.py"):
        for name in re.findall(r'Script\.load\("(\w+)"\)', module.read_text(encoding="utf-8")):
            found.setdefault(name, []).append(module)
    return found


def test_no_python_module_holds_lua() -> None:
    holders = [module for module in BOT.rglob("*.py")
               if "redis.call" in module.read_text(encoding="utf-8")]
    assert holders == []


def test_every_file_is_loaded_by_one_module_and_every_load_has_its_file() -> None:
    loads = _loads()
    assert sorted(loads) == [path.stem for path in FILES]
    assert {name: modules for name, modules in loads.items() if len(modules) > 1} == {}


@pytest.mark.parametrize("path", FILES, ids=lambda path: path.stem)
def test_a_file_opens_with_its_name_and_the_keys_and_arguments_it_uses(path: Path) -> None:
    source = path.read_text(encoding="utf-8")
    header = _header(source)
    assert header.startswith(f"-- {path.name}: ")
    code = source[len(header):]
    for name in ("KEYS", "ARGV"):
        if re.search(rf"\b{name}\b", code):
            assert f"{name}[" in header, f"{path.name} uses {name} its header does not name"


# Scripts cannot share code (a Redis Function library would be replaced by name during a
# rolling deploy): these helpers are copied, and their copies must agree.
SHARED_HELPERS = {
    "audit": r"^local function audit\(.*?^end$",
    "follow-up record": r"^local FIELDS = \{.*?^local function parse_record\(.*?^end$",
}


@pytest.mark.parametrize("name", SHARED_HELPERS)
def test_the_copies_of_a_shared_helper_are_the_same(name: str) -> None:
    helper = re.compile(SHARED_HELPERS[name], re.M | re.S)
    copies = {path.name: match.group(0) for path in FILES
              if (match := helper.search(path.read_text(encoding="utf-8")))}
    assert len(copies) >= 2
    assert len(set(copies.values())) == 1, sorted(copies)
