"""The eval worker's YAML file: the judge model, the rubrics and their thresholds."""

from __future__ import annotations

import hashlib
import os
import re
from collections.abc import Mapping
from dataclasses import dataclass, field
from importlib import resources
from pathlib import Path
from typing import Any, Literal, cast

import yaml

Scale = Literal["pass_fail", "1-5"]
"""How a rubric is judged: ``pass_fail``, or a score from 1 to 5 with a pass threshold."""

PASS: str = "pass"  # noqa: S105 - a label, not a password
FAIL: str = "fail"
NOT_APPLICABLE: str = "not_applicable"
ERROR: str = "error"

CONFIG_ENV = "LLMTEL_EVALS_CONFIG"
_NAME = re.compile(r"^[a-z][a-z0-9_]{0,63}$")
_SCALES: tuple[str, ...] = ("pass_fail", "1-5")


class ConfigError(ValueError):
    """The evals YAML file is missing, malformed or names something unknown.

    Example:
        >>> from llmtel.evals import ConfigError, parse_config
        >>> try:
        ...     parse_config("rubrics: []")
        ... except ConfigError as exc:
        ...     print(exc)
        rubrics: list at least one rubric
    """


@dataclass(frozen=True)
class Rubric:
    """One criterion the judge applies to a call, with a bounded verdict.

    Attributes:
        name: Lowercase letters, digits and ``_``; ``gen_ai.evaluation.name`` of results.
        instructions: What the judge checks, in plain words.
        scale: ``"pass_fail"``, or ``"1-5"`` (a score; ``pass_threshold`` and above pass).
        pass_threshold: For ``"1-5"``: the lowest passing score.
        not_applicable: The judge may answer "not applicable" (label ``not_applicable``,
            left out of pass rates).
        endpoints: Judge only calls made with one of these ``llmtel.context(endpoint=...)``
            values; empty means every call.

    Example:
        >>> tone = Rubric("tone", "Is the answer polite?", scale="1-5", pass_threshold=4)
        >>> tone.label_for_score(3), tone.label_for_score(4)
        ('fail', 'pass')
    """

    name: str
    instructions: str
    scale: Scale = "pass_fail"
    pass_threshold: int = 4
    not_applicable: bool = False
    endpoints: tuple[str, ...] = ()

    def __post_init__(self) -> None:
        if not _NAME.match(self.name):
            raise ConfigError(
                f"rubric name {self.name!r}: use lowercase letters, digits and _ "
                "(it becomes a metric label and a JSON schema name)"
            )
        if not self.instructions.strip():
            raise ConfigError(f"rubric {self.name}: instructions are empty")
        if self.scale not in _SCALES:
            raise ConfigError(f"rubric {self.name}: scale must be pass_fail or 1-5")
        if not 1 <= self.pass_threshold <= 5:
            raise ConfigError(f"rubric {self.name}: pass_threshold must be between 1 and 5")

    @property
    def version(self) -> str:
        """A short digest of what the judge is told; it changes when the rubric does.

        Example:
            >>> len(Rubric("tone", "Is the answer polite?").version)
            8
        """
        text = "\n".join(
            (self.scale, str(self.pass_threshold), str(self.not_applicable), self.instructions)
        )
        return hashlib.sha256(text.encode()).hexdigest()[:8]

    def labels(self) -> tuple[str, ...]:
        """The labels a verdict of this rubric can carry (besides ``error``).

        Example:
            >>> Rubric("grounded", "Supported by the context?", not_applicable=True).labels()
            ('pass', 'fail', 'not_applicable')
        """
        return (PASS, FAIL, NOT_APPLICABLE) if self.not_applicable else (PASS, FAIL)

    def label_for_score(self, score: int) -> str:
        """``pass`` or ``fail`` for a score of a ``1-5`` rubric.

        Example:
            >>> Rubric("tone", "Polite?", scale="1-5", pass_threshold=3).label_for_score(3)
            'pass'
        """
        return PASS if score >= self.pass_threshold else FAIL

    def applies_to(self, endpoint: str | None) -> bool:
        """Whether calls of this ``llmtel.endpoint`` are judged by this rubric.

        Example:
            >>> Rubric("tone", "Polite?", endpoints=("support",)).applies_to("search")
            False
        """
        return not self.endpoints or endpoint in self.endpoints


@dataclass(frozen=True)
class JudgeSettings:
    """Which model judges, where it is reached, and how its failures are retried.

    Example:
        >>> JudgeSettings(model="gpt-4o").backoff(3)
        4.0
    """

    model: str = "gpt-4o-mini"
    base_url: str | None = None
    api_key_env: str = "OPENAI_API_KEY"
    temperature: float | None = 0.0
    timeout_s: float = 60.0
    max_attempts: int = 5
    backoff_initial_s: float = 1.0
    backoff_max_s: float = 60.0
    headers: dict[str, str] = field(default_factory=dict)

    def __post_init__(self) -> None:
        if not self.model:
            raise ConfigError("judge.model is empty")
        if self.timeout_s <= 0 or self.max_attempts < 1:
            raise ConfigError("judge.timeout_s must be positive and max_attempts at least 1")
        if not 0 <= self.backoff_initial_s <= self.backoff_max_s:
            raise ConfigError("judge.backoff_initial_s must be >= 0 and <= backoff_max_s")

    def backoff(self, attempt: int) -> float:
        """Seconds to wait after failed attempt number ``attempt`` (1-based): doubling, capped.

        Example:
            >>> [JudgeSettings(backoff_max_s=5).backoff(n) for n in (1, 2, 3, 4)]
            [1.0, 2.0, 4.0, 5.0]
        """
        return float(min(self.backoff_max_s, self.backoff_initial_s * 2 ** (attempt - 1)))


@dataclass(frozen=True)
class EvalConfig:
    """Everything the evals YAML file says.

    Attributes:
        judge: The judge model and its retry policy.
        rubrics: The rubrics every selected call is judged by.
        outcomes: ``llmtel.outcome`` values worth judging.
        content_wait_s: How long a call record waits for its full-content record.

    Example:
        >>> from llmtel.evals import load_config
        >>> [rubric.name for rubric in load_config().rubrics]
        ['grounded', 'cites_sources', 'appropriate_refusal']
    """

    judge: JudgeSettings = field(default_factory=JudgeSettings)
    rubrics: tuple[Rubric, ...] = ()
    outcomes: tuple[str, ...] = ("ok", "refusal")
    content_wait_s: float = 30.0

    def rubric(self, name: str) -> Rubric | None:
        """The rubric called ``name``, if any.

        Example:
            >>> from llmtel.evals import load_config
            >>> load_config().rubric("grounded").not_applicable
            True
        """
        return next((r for r in self.rubrics if r.name == name), None)


def default_config_text() -> str:
    """The text of the default evals file shipped with llmtel, to copy and edit.

    Example:
        >>> default_config_text().startswith("# llmtel evals")
        True
    """
    return resources.files("llmtel.evals").joinpath("rubrics.yaml").read_text(encoding="utf-8")


def load_config(path: str | os.PathLike[str] | None = None) -> EvalConfig:
    """Read an evals YAML file: ``path``, else ``$LLMTEL_EVALS_CONFIG``, else the default.

    Raises:
        ConfigError: the file cannot be read, or says something invalid.

    Example:
        >>> load_config().judge.model
        'gpt-4o-mini'
    """
    chosen = path if path is not None else os.environ.get(CONFIG_ENV) or None
    if chosen is None:
        return parse_config(default_config_text(), source="the default rubrics.yaml")
    try:
        text = Path(chosen).read_text(encoding="utf-8")
    except (OSError, UnicodeDecodeError) as exc:
        raise ConfigError(f"cannot read evals config {chosen}: {exc}") from None
    return parse_config(text, source=str(chosen))


def parse_config(text: str, *, source: str = "<text>") -> EvalConfig:
    """Parse the text of an evals YAML file.

    Raises:
        ConfigError: invalid YAML, an unknown key, or an invalid value.

    Example:
        >>> config = parse_config('''
        ... rubrics:
        ...   - name: tone
        ...     scale: 1-5
        ...     instructions: Is the answer polite?
        ... ''')
        >>> config.rubrics[0].pass_threshold, config.judge.model
        (4, 'gpt-4o-mini')
    """
    try:
        data = yaml.safe_load(text)
    except yaml.YAMLError as exc:
        raise ConfigError(f"{source}: not valid YAML: {exc}") from None
    root = _mapping(data if data is not None else {}, "the file")
    _known(root, {"judge", "calls", "rubrics"}, "the file")
    judge_data = _mapping(root.get("judge") or {}, "judge")
    _known(
        judge_data,
        {f for f in JudgeSettings.__dataclass_fields__},
        "judge",
    )
    calls = _mapping(root.get("calls") or {}, "calls")
    _known(calls, {"outcomes", "content_wait_s"}, "calls")
    raw_rubrics = root.get("rubrics")
    if not isinstance(raw_rubrics, list) or not raw_rubrics:
        raise ConfigError("rubrics: list at least one rubric")
    rubrics = tuple(_rubric(item, index) for index, item in enumerate(raw_rubrics))
    names = [r.name for r in rubrics]
    duplicates = sorted({n for n in names if names.count(n) > 1})
    if duplicates:
        raise ConfigError(f"rubrics: duplicate names {', '.join(duplicates)}")
    try:
        judge = JudgeSettings(
            model=str(judge_data.get("model") or JudgeSettings.model),
            base_url=_optional_str(judge_data.get("base_url")),
            api_key_env=str(judge_data.get("api_key_env") or JudgeSettings.api_key_env),
            temperature=_optional_float(judge_data, "temperature", JudgeSettings.temperature),
            timeout_s=_float(judge_data, "timeout_s", JudgeSettings.timeout_s),
            max_attempts=_int(judge_data, "max_attempts", JudgeSettings.max_attempts),
            backoff_initial_s=_float(
                judge_data, "backoff_initial_s", JudgeSettings.backoff_initial_s
            ),
            backoff_max_s=_float(judge_data, "backoff_max_s", JudgeSettings.backoff_max_s),
            headers=_headers(judge_data.get("headers")),
        )
    except ConfigError as exc:
        raise ConfigError(f"{source}: {exc}") from None
    outcomes = calls.get("outcomes", ["ok", "refusal"])
    if not isinstance(outcomes, list) or not all(isinstance(o, str) for o in outcomes):
        raise ConfigError("calls.outcomes: a list of llmtel.outcome values")
    wait = _float(calls, "content_wait_s", 30.0)
    if wait < 0:
        raise ConfigError("calls.content_wait_s must not be negative")
    return EvalConfig(judge=judge, rubrics=rubrics, outcomes=tuple(outcomes), content_wait_s=wait)


def _rubric(item: object, index: int) -> Rubric:
    where = f"rubrics[{index}]"
    data = _mapping(item, where)
    _known(
        data,
        {"name", "instructions", "scale", "pass_threshold", "not_applicable", "endpoints"},
        where,
    )
    name = data.get("name")
    instructions = data.get("instructions")
    if not isinstance(name, str) or not isinstance(instructions, str):
        raise ConfigError(f"{where}: name and instructions are required strings")
    scale = str(data.get("scale", "pass_fail"))
    if scale not in _SCALES:
        raise ConfigError(f"{where} ({name}): scale must be pass_fail or 1-5, not {scale!r}")
    endpoints = data.get("endpoints") or []
    if not isinstance(endpoints, list) or not all(isinstance(e, str) for e in endpoints):
        raise ConfigError(f"{where} ({name}): endpoints must be a list of strings")
    not_applicable = data.get("not_applicable", False)
    if not isinstance(not_applicable, bool):
        raise ConfigError(f"{where} ({name}): not_applicable must be true or false")
    return Rubric(
        name=name,
        instructions=" ".join(instructions.split()),
        scale=cast("Scale", scale),
        pass_threshold=_int(data, "pass_threshold", 4),
        not_applicable=not_applicable,
        endpoints=tuple(endpoints),
    )


def _headers(value: object) -> dict[str, str]:
    if value is None:
        return {}
    if not isinstance(value, Mapping) or not all(isinstance(k, str) for k in value):
        raise ConfigError("judge.headers must map header names to values")
    return {str(k): str(v) for k, v in value.items()}


def _mapping(value: object, where: str) -> Mapping[str, Any]:
    if not isinstance(value, Mapping):
        raise ConfigError(f"{where}: expected a mapping")
    return cast("Mapping[str, Any]", value)


def _known(data: Mapping[str, Any], allowed: set[str], where: str) -> None:
    unknown = sorted(set(data) - allowed)
    if unknown:
        raise ConfigError(
            f"{where}: unknown key(s) {', '.join(map(str, unknown))} "
            f"(known: {', '.join(sorted(allowed))})"
        )


def _optional_str(value: object) -> str | None:
    return None if value is None or value == "" else str(value)


def _number(data: Mapping[str, Any], key: str) -> float | None:
    value = data.get(key)
    if value is None:
        return None
    if isinstance(value, bool) or not isinstance(value, int | float):
        raise ConfigError(f"{key} must be a number, not {value!r}")
    return float(value)


def _float(data: Mapping[str, Any], key: str, default: float) -> float:
    value = _number(data, key)
    return default if value is None else value


def _optional_float(data: Mapping[str, Any], key: str, default: float | None) -> float | None:
    if key in data and data[key] is None:
        return None
    value = _number(data, key)
    return default if value is None else value


def _int(data: Mapping[str, Any], key: str, default: int) -> int:
    value = data.get(key)
    if value is None:
        return default
    if isinstance(value, bool) or not isinstance(value, int):
        raise ConfigError(f"{key} must be an integer, not {value!r}")
    return value
