"""Load a flow YAML file into a `Flow`, keeping line numbers for precise messages.

Structure that cannot be understood at all raises `FlowError`; anything else
that is wrong (a missing translation, an option leading nowhere…) is kept as a
problem line for the lint, so that one run reports every problem at once.
"""

from __future__ import annotations

from collections.abc import Mapping
from dataclasses import dataclass, field
from datetime import date
from pathlib import Path
from typing import Any

import yaml

from bot.errors import FlowError
from bot.flows.model import (
    DEFAULT_SPELLING,
    GSM7_SPELLING,
    Action,
    Contact,
    Dimension,
    Flow,
    Option,
    Spelling,
    State,
    StateKind,
    Text,
)


class _LineDict(dict[str, Any]):
    line = 0


class _LineLoader(yaml.SafeLoader):
    pass


def _construct_mapping(loader: _LineLoader, node: yaml.MappingNode) -> _LineDict:
    mapping = _LineDict({str(k): v for k, v in loader.construct_mapping(node, deep=True).items()})
    mapping.line = node.start_mark.line + 1
    return mapping


_LineLoader.add_constructor(
    yaml.resolver.BaseResolver.DEFAULT_MAPPING_TAG,
    _construct_mapping,
)


def _line(value: object) -> int:
    return value.line if isinstance(value, _LineDict) else 0


@dataclass
class LoadedFlow:
    flow: Flow
    problems: list[str] = field(default_factory=list)


@dataclass
class _Reader:
    path: Path
    languages: tuple[str, ...]
    texts_raw: Mapping[str, Any]
    problems: list[str] = field(default_factory=list)

    def problem(self, line: int, where: str, message: str) -> None:
        self.problems.append(f"{self.path}:{line}: {where}: {message}")

    def text(self, raw: Any, line: int, where: str) -> Text:
        """A text in every language: a mapping, or the name of an entry of `texts`."""
        if isinstance(raw, str):
            if raw not in self.texts_raw:
                self.problem(line, where, f"unknown text '{raw}'")
                return {}
            raw = self.texts_raw[raw]
            line = _line(raw) or line
        if not isinstance(raw, Mapping):
            self.problem(line, where, "a text must be a mapping of languages or a text name")
            return {}
        text = {str(lang): str(words).strip() for lang, words in raw.items() if words is not None}
        for language in self.languages:
            if not text.get(language):
                self.problem(line, where, f"missing translation '{language}'")
        for language in text:
            if language not in self.languages:
                self.problem(line, where, f"language '{language}' is not one of the flow's")
        return text


def _kind(raw: Mapping[str, Any]) -> StateKind | None:
    if "action" in raw:
        return StateKind.ACTION
    if raw.get("end"):
        return StateKind.END
    if "ask" in raw:
        return StateKind.QUESTION
    if "say" in raw:
        return StateKind.MENU
    return None


def _state(reader: _Reader, name: str, raw: Any) -> State | None:
    line = _line(raw)
    where = f"state '{name}'"
    if not isinstance(raw, Mapping):
        reader.problem(line, where, "a state must be a mapping")
        return None
    kind = _kind(raw)
    if kind is None:
        reader.problem(line, where, "a state needs one of: say, ask, action, end")
        return None
    text = reader.text(raw.get("say") or raw.get("ask"), line, where) if kind not in (
        StateKind.ACTION,
    ) else {}
    options: list[Option] = []
    for index, option in enumerate(raw.get("options") or []):
        oline = _line(option) or line
        owhere = f"{where} option {index + 1}"
        if not isinstance(option, Mapping) or "key" not in option or "to" not in option:
            reader.problem(oline, owhere, "an option needs key, label and to")
            continue
        value = option.get("value")
        options.append(
            Option(
                key=str(option["key"]),
                label=reader.text(option.get("label"), oline, owhere),
                to=str(option["to"]),
                value=None if value is None else str(value),
                score=_score(reader, option.get("score"), oline, owhere),
                alarm=bool(option.get("alarm", False)),
            )
        )
    action: Action | None = None
    if kind is StateKind.ACTION:
        try:
            action = Action(str(raw["action"]))
        except ValueError:
            reader.problem(line, where, f"unknown action '{raw['action']}'")
    to = raw.get("to")
    routes: dict[str, str] = {}
    if isinstance(to, Mapping):
        routes = {str(route): str(target) for route, target in to.items()}
        to = None
    return State(
        name=name,
        kind=kind,
        line=line,
        text=text,
        options=tuple(options),
        save=None if raw.get("save") is None else str(raw["save"]),
        validate=None if raw.get("validate") is None else str(raw["validate"]),
        action=action,
        params={str(k): str(v) for k, v in (raw.get("with") or {}).items()},
        to=None if to is None else str(to),
        routes=routes,
        nav=bool(raw.get("nav", True)),
        draft=bool(raw.get("draft", False)),
        audio=_audio(reader, raw.get("audio"), line, where),
        many_options_because=None if raw.get("many_options_because") is None
        else str(raw["many_options_because"]),
        dimension=_dimension(reader, raw.get("dimension"), line, where),
    )


def _score(reader: _Reader, raw: Any, line: int, where: str) -> float | None:
    """An answer's score in a survey: a number from 0 to 1."""
    if raw is None:
        return None
    if isinstance(raw, bool) or not isinstance(raw, int | float) or not 0 <= raw <= 1:
        reader.problem(line, where, f"score '{raw}' must be a number from 0 to 1")
        return None
    return float(raw)


def _dimension(reader: _Reader, raw: Any, line: int, where: str) -> Dimension | None:
    if raw is None:
        return None
    try:
        return Dimension(str(raw))
    except ValueError:
        reader.problem(line, where, f"dimension '{raw}': one of {', '.join(Dimension)}")
        return None


def _audio(reader: _Reader, raw: Any, line: int, where: str) -> Text:
    """`audio: {bm: audio/bm/main.mp3}`: recordings of a screen, per language (voice)."""
    if raw is None:
        return {}
    if not isinstance(raw, Mapping):
        reader.problem(line, where, "audio must be a mapping of languages to files or URLs")
        return {}
    for language in raw:
        if language not in reader.languages:
            reader.problem(line, where, f"audio language '{language}' is not one of the flow's")
    return {str(language): str(source) for language, source in raw.items() if source}


def _contacts(reader: _Reader, path: Path) -> dict[str, Contact]:
    try:
        raw = yaml.load(path.read_text(encoding="utf-8"), Loader=_LineLoader)  # noqa: S506
    except (OSError, yaml.YAMLError) as error:
        reader.problem(0, f"contacts {path}", f"cannot read: {error}")
        return {}
    contacts: dict[str, Contact] = {}
    entries = raw.get("contacts") if isinstance(raw, Mapping) else None
    if not isinstance(entries, Mapping):
        reader.problem(0, f"contacts {path}", "expected a 'contacts' mapping")
        return {}
    for contact_id, entry in entries.items():
        where = f"{path}:{_line(entry)}: contact '{contact_id}'"
        if not isinstance(entry, Mapping) or "number" not in entry:
            reader.problems.append(f"{where}: needs a number")
            continue
        verified_on = entry.get("last_verified")
        if not isinstance(verified_on, date):
            reader.problems.append(f"{where}: needs last_verified (YYYY-MM-DD)")
            verified_on = None
        name = entry.get("name") or {}
        contacts[str(contact_id)] = Contact(
            id=str(contact_id),
            number=str(entry["number"]),
            name={str(k): str(v) for k, v in name.items()} if isinstance(name, Mapping) else {},
            last_verified=verified_on,
            verified=bool(entry.get("verified", False)),
        )
    return contacts


def _spelling(reader: _Reader, raw: Mapping[str, Any],
              languages: tuple[str, ...]) -> dict[str, Mapping[str, str]]:
    """Per language, the letters replaced on written channels (`spelling:`)."""
    ways: dict[str, Any] = {**DEFAULT_SPELLING, **(raw.get("spelling") or {})} \
        if isinstance(raw.get("spelling") or {}, Mapping) else dict(DEFAULT_SPELLING)
    tables: dict[str, Mapping[str, str]] = {}
    for lang, way in ways.items():
        where = f"spelling of '{lang}'"
        if isinstance(way, Mapping):
            if not all(isinstance(k, str) and len(k) == 1 for k in way):
                reader.problem(_line(way), where, "a mapping replaces single letters")
                continue
            tables[str(lang)] = {str(k): str(v) for k, v in way.items()}
        elif str(way) == Spelling.GSM7:
            tables[str(lang)] = GSM7_SPELLING
        elif str(way) != Spelling.MODERN:
            reader.problem(_line(raw), where,
                           f"'{way}': one of {', '.join(Spelling)}, or a mapping of letters")
    return {lang: table for lang, table in tables.items() if lang in languages and table}


def _alerts(reader: _Reader, raw: Any) -> dict[str, Any]:
    """`alerts: {start: <state>, keywords: [ALERTES, …]}`: where the alert keywords lead."""
    if raw is None:
        return {}
    if not isinstance(raw, Mapping) or "start" not in raw:
        reader.problem(_line(raw), "alerts", "needs `start` (a state) and `keywords`")
        return {}
    words = raw.get("keywords") or []
    if not isinstance(words, list) or not all(isinstance(word, str) and word.strip()
                                               for word in words):
        reader.problem(_line(raw), "alerts", "`keywords` is a list of words")
        words = []
    return {"alerts": str(raw["start"]), "alert_keywords": tuple(w.strip() for w in words)}


def load_flow(path: Path) -> LoadedFlow:
    """Read and check the structure of a flow file."""
    try:
        raw = yaml.load(path.read_text(encoding="utf-8"), Loader=_LineLoader)  # noqa: S506
    except OSError as error:
        raise FlowError(f"{path}: cannot read: {error.strerror}") from error
    except yaml.YAMLError as error:
        raise FlowError(f"{path}: not valid YAML: {error}") from error
    if not isinstance(raw, Mapping) or not isinstance(raw.get("states"), Mapping):
        raise FlowError(f"{path}:1: a flow needs a 'states' mapping")
    languages = tuple(str(lang) for lang in raw.get("languages") or ())
    if not languages:
        raise FlowError(f"{path}:{_line(raw)}: a flow needs 'languages'")
    texts_raw = raw.get("texts") or {}
    reader = _Reader(path=path, languages=languages, texts_raw=texts_raw)
    texts = {
        str(name): reader.text(value, _line(value), f"text '{name}'")
        for name, value in texts_raw.items()
    }
    states: dict[str, State] = {}
    for name, state_raw in raw["states"].items():
        state = _state(reader, str(name), state_raw)
        if state is not None:
            states[state.name] = state
    contacts_file = raw.get("contacts")
    contacts = _contacts(reader, path.parent / str(contacts_file)) if contacts_file else {}
    start = str(raw.get("start") or "")
    spelling = _spelling(reader, raw, languages)
    flow = Flow(
        id=str(raw.get("id") or path.stem),
        version=str(raw.get("version") or ""),
        path=path,
        languages=languages,
        start=start,
        home=str(raw.get("home") or start),
        first_start=None if raw.get("first_start") is None else str(raw["first_start"]),
        texts=texts,
        states=states,
        contacts=contacts,
        tts={str(lang): str(code) for lang, code in (raw.get("tts") or {}).items() if code},
        emergency=None if raw.get("emergency") is None else str(raw["emergency"]),
        spelling=spelling,
        first_start_on={str(channel): str(state)
                        for channel, state in (raw.get("first_start_on") or {}).items()},
        followup=None if raw.get("followup") is None else str(raw["followup"]),
        **_alerts(reader, raw.get("alerts")),
    )
    return LoadedFlow(flow=flow, problems=reader.problems)
