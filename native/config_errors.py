"""Point a config checker's error at the file and line to fix: `FILE:LINE: message`.

`otelcol validate`, `jaeger validate`, `promtool check config` and `amtool
check-config` each say what is wrong in their own way. Prometheus' and
Alertmanager's YAML errors carry a line number; the collector's and Jaeger's name a
key or a component id instead (`has invalid keys: recievers`, `unknown type:
"memory_limitr"`, `references exporter "otlp_htp"`), so the line is found by looking
that name up in the files the checker read.

    >>> from pathlib import Path
    >>> files = [ConfigFile("prometheus/prometheus.yaml", Path("/s/prometheus.yaml"))]
    >>> locate("FAILED: parsing YAML file /s/prometheus.yaml: yaml: unmarshal errors:\\n"
    ...        "  line 10: field scrape_intervall not found in type config.plain", files)
    'prometheus/prometheus.yaml:10: line 10: field scrape_intervall not found in type config.plain'

Standard library only, like stack.py.
"""

from __future__ import annotations

import json
import re
from collections.abc import Iterable, Sequence
from dataclasses import dataclass
from pathlib import Path

# "line 10: field x not found" (Go YAML), "13:15: group ..." (promtool's rule parser).
_LINE = re.compile(r"\bline (\d+)\b|(?:^|[\s:])(\d+):\d+: ")
_INVALID_KEYS = re.compile(r"has invalid keys: ([\w./-]+(?:, [\w./-]+)*)")
_QUOTED = re.compile(r"\"([^\"\s]+)\"")
_FOR_COMPONENT = re.compile(r"error reading configuration for \"([^\"]+)\"")


@dataclass(frozen=True)
class ConfigFile:
    """A file a checker reads: as the user knows it (``shown``) and as it was read."""

    shown: str
    path: Path


def locate(output: str, files: Sequence[ConfigFile]) -> str:
    """The checker's error as ``FILE:LINE: message`` (``FILE: message`` if no line is known)."""
    lines = [line.strip() for line in output.splitlines() if line.strip()]
    if not lines:
        return f"{files[0].shown}: the check failed without a message"
    current = files[0]
    for text in lines:
        current = _file_named(text, files) or current
        match = _LINE.search(text)
        if match:
            number = int(match.group(1) or match.group(2))
            return f"{current.shown}:{number}: {_strip_paths(text, files)}"
    # No line number (the collector's and Jaeger's decoding errors): the most specific
    # message is the last one; look up the key or id it names.
    message = _strip_paths(lines[-1], files)
    whole = " ".join(lines)
    found = _find_named(whole, files)
    if found:
        where, number = found
        return f"{where.shown}:{number}: {message}"
    return f"{current.shown}: {message}"


def _file_named(text: str, files: Sequence[ConfigFile]) -> ConfigFile | None:
    named = [f for f in files if str(f.path) in text]
    return max(named, key=lambda f: len(str(f.path))) if named else None


def _strip_paths(text: str, files: Sequence[ConfigFile]) -> str:
    for f in sorted(files, key=lambda f: -len(str(f.path))):
        text = text.replace(str(f.path), f.shown)
    return re.sub(r"^(Error|FAILED):\s*", "", text)


def _find_named(whole: str, files: Sequence[ConfigFile]) -> tuple[ConfigFile, int] | None:
    """The line of the first key or id the error names, in any of the files."""
    after: str | None = None
    context = _FOR_COMPONENT.search(whole)
    if context:
        after = context.group(1)
    invalid = _INVALID_KEYS.search(whole)
    names = invalid.group(1).split(", ") if invalid else _QUOTED.findall(whole)
    for name in names:
        for f in files:
            number = _line_of(name, _read(f.path), after)
            if number:
                return f, number
    return None


def _read(path: Path) -> list[str]:
    try:
        return path.read_text(errors="replace").splitlines()
    except OSError:
        return []


def _line_of(name: str, lines: Sequence[str], after: str | None) -> int | None:
    """1-based line where ``name`` is a YAML key, else where it is a value (not a comment).

    With ``after`` (the component an error is about), the search starts at that
    component's own key.
    """
    start = 0
    if after:
        start = (_key_line(after, lines, 0) or 1) - 1
    return _key_line(name, lines, start) or _value_line(name, lines, start)


def _key_line(name: str, lines: Sequence[str], start: int) -> int | None:
    key = re.compile(rf"^\s*(?:-\s*)?[\"']?{re.escape(name)}[\"']?\s*:")
    return next((i + 1 for i in range(start, len(lines)) if key.match(lines[i])), None)


def _value_line(name: str, lines: Sequence[str], start: int) -> int | None:
    word = re.compile(rf"(?<![\w/.-]){re.escape(name)}(?![\w/.-])")
    for i in range(start, len(lines)):
        code = lines[i].split("#", 1)[0]
        if word.search(code):
            return i + 1
    return None


# -- dashboards (Grafana itself does not run natively) ---------------------------------


def check_dashboard(shown: str, text: str, datasource_uids: Iterable[str]) -> list[str]:
    """Errors in a dashboard file as ``FILE:LINE: message``: bad JSON, unknown datasource uids.

    >>> check_dashboard("d.json", '{"panels": [{"datasource": {"uid": "tempo"}}]}', ["jaeger"])
    ['d.json:1: datasource uid "tempo" is not provisioned (known: jaeger)']
    """
    try:
        dashboard = json.loads(text)
    except json.JSONDecodeError as error:
        return [f"{shown}:{error.lineno}: invalid JSON: {error.msg} (column {error.colno})"]
    known = sorted(set(datasource_uids))
    errors = []
    lines = text.splitlines()
    for uid in sorted(_datasource_uids(dashboard) - set(known)):
        if uid.startswith("$"):  # a datasource variable, resolved by Grafana
            continue
        number = next(
            (
                i + 1
                for i, line in enumerate(lines)
                if re.search(rf'"uid":\s*"{re.escape(uid)}"', line)
            ),
            1,
        )
        listed = ", ".join(known)
        errors.append(
            f'{shown}:{number}: datasource uid "{uid}" is not provisioned (known: {listed})'
        )
    return errors


def _datasource_uids(node: object) -> set[str]:
    found: set[str] = set()
    if isinstance(node, dict):
        source = node.get("datasource")
        if isinstance(source, dict) and isinstance(source.get("uid"), str):
            found.add(source["uid"])
        for value in node.values():
            found |= _datasource_uids(value)
    elif isinstance(node, list):
        for value in node:
            found |= _datasource_uids(value)
    return found


def provisioned_uids(datasources_yaml: str) -> list[str]:
    """The ``uid:`` values of a Grafana datasource provisioning file."""
    return re.findall(r"^\s*uid:\s*[\"']?([\w-]+)", datasources_yaml, flags=re.MULTILINE)
