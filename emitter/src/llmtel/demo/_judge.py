"""The demo server as an LLM judge with known verdicts.

A chat request with the header ``x-llmtel-demo-judge: S`` and a ``response_format``
``{"type": "json_schema", ...}`` (what the openai SDK's
``chat.completions.parse(response_format=Model)`` sends) is answered with JSON that fits
the schema. (Without the header, such a request gets the usual lorem text.) The verdict
comes from the text of the request's user messages (the judged conversation and answer):

- a marker ``[demo-verdict:fail]`` (or ``pass``, ``na``, or a score ``1``-``5``) decides
  for every rubric; ``[demo-verdict:NAME=fail]`` only for the schema named ``NAME`` (the
  rubric) and wins over a marker without a name;
- without a marker, a share ``S`` (``0`` to ``1``) of verdicts fail, chosen by a hash of
  the schema name and the text (the same text always gets the same verdict); with
  ``S = 0`` every unmarked verdict is ``pass``.

How a verdict fills the schema: a string enum gets ``pass``, ``fail`` or
``not_applicable`` (a score of 4 or 5 is ``pass``); an integer enum gets its highest
value for ``pass``, its lowest for ``fail`` and ``na``, or the score; a boolean is
false only for ``na``; other strings get an explanation.
"""

from __future__ import annotations

import hashlib
import json
import re
from collections.abc import Mapping, Sequence
from dataclasses import dataclass
from typing import Any

from ._plan import DirectiveError

HEADER_JUDGE = "x-llmtel-demo-judge"
MARKER = re.compile(r"\[demo-verdict:(?:([A-Za-z0-9_-]+)=)?(pass|fail|na|[1-5])\]")


@dataclass(frozen=True)
class JudgeRecord:
    """One verdict the demo judge decided, and whether it reached the client."""

    rubric: str  # the JSON schema's name
    verdict: str  # pass | fail | na | 1-5
    subject: str  # a digest of the judged text: equal texts, equal digests
    delivered: bool  # False when the client had gone before the answer was written


@dataclass(frozen=True)
class JudgeRequest:
    """A structured-output chat request: the schema to fill and the text to judge."""

    name: str
    schema: Mapping[str, Any]
    text: str
    fail_share: float

    @property
    def subject(self) -> str:
        """A short digest of the judged text."""
        return hashlib.sha256(self.text.encode()).hexdigest()[:16]

    def verdict(self) -> str:
        """``pass``, ``fail``, ``na`` or a score, from markers or the fail share."""
        generic: str | None = None
        for name, value in MARKER.findall(self.text):
            if name == self.name:
                return str(value)
            if not name:
                generic = str(value)
        if generic is not None:
            return generic
        digest = hashlib.sha256(f"{self.name}\n{self.text}".encode()).digest()
        return "fail" if int.from_bytes(digest[:4], "big") / 2**32 < self.fail_share else "pass"

    def answer(self, verdict: str) -> str:
        """The JSON text of the answer: the schema filled in for ``verdict``."""
        value = _fill(self.schema, verdict, self.name, self.schema.get("$defs") or {})
        return json.dumps(value, separators=(",", ":"))


def judge_request(body: Mapping[str, object], headers: Mapping[str, str]) -> JudgeRequest | None:
    """The judge request in a chat body, or None when it is none (no header or no schema).

    Raises:
        DirectiveError: the judge header is not a share between 0 and 1.
    """
    raw = headers.get(HEADER_JUDGE)
    if raw is None:
        return None
    response_format = body.get("response_format")
    if not isinstance(response_format, Mapping) or response_format.get("type") != "json_schema":
        return None
    spec = response_format.get("json_schema")
    if not isinstance(spec, Mapping) or not isinstance(spec.get("schema"), Mapping):
        return None
    try:
        share = float(raw)
    except ValueError:
        share = -1.0
    if not 0.0 <= share <= 1.0:
        raise DirectiveError(f"{HEADER_JUDGE}: expected the fail share, from 0 to 1")
    messages = body.get("messages")
    texts = []
    if isinstance(messages, Sequence):
        for message in messages:
            if isinstance(message, Mapping) and message.get("role") == "user":
                texts.append(_text(message.get("content")))
    return JudgeRequest(str(spec.get("name") or "verdict"), spec["schema"], "\n".join(texts), share)


def _text(content: object) -> str:
    if isinstance(content, str):
        return content
    if isinstance(content, Sequence):
        return "\n".join(str(part.get("text", "")) for part in content if isinstance(part, Mapping))
    return ""


def _fill(schema: Mapping[str, Any], verdict: str, name: str, defs: Mapping[str, Any]) -> object:
    ref = schema.get("$ref")
    if isinstance(ref, str) and ref.startswith("#/$defs/"):
        return _fill(defs.get(ref.removeprefix("#/$defs/"), {}), verdict, name, defs)
    for key in ("anyOf", "oneOf"):
        options = schema.get(key)
        if isinstance(options, list) and options:
            usable = [o for o in options if isinstance(o, Mapping) and o.get("type") != "null"]
            return _fill(usable[0] if usable else options[0], verdict, name, defs)
    enum = schema.get("enum")
    if isinstance(enum, list) and enum:
        return _pick(enum, verdict)
    kind = schema.get("type")
    if kind == "object":
        properties = schema.get("properties") or {}
        return {key: _fill(sub, verdict, name, defs) for key, sub in properties.items()}
    if kind == "array":
        return []
    if kind == "boolean":
        return verdict != "na"
    if kind in ("integer", "number"):
        return 0 if verdict in ("fail", "na") else 1
    if kind == "null":
        return None
    return f"llmtel demo judge: {verdict} for {name} (decided by a marker or the fail share)."


def _pick(enum: list[Any], verdict: str) -> object:
    numbers = sorted(v for v in enum if isinstance(v, int | float) and not isinstance(v, bool))
    if numbers:
        if verdict.isdigit() and int(verdict) in numbers:
            return int(verdict)
        if verdict == "pass" or (verdict.isdigit() and int(verdict) >= 4):
            return numbers[-1]
        return numbers[0]
    wanted = {"pass": "pass", "fail": "fail", "na": "not_applicable"}.get(verdict)
    if wanted is None:
        wanted = "pass" if int(verdict) >= 4 else "fail"
    if wanted not in enum and wanted == "not_applicable":
        wanted = "fail"
    return wanted if wanted in enum else enum[0]
