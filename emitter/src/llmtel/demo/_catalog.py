"""``GET /v1/models`` and ``POST /v1/embeddings``: a fixed model list and hash-based vectors."""

from __future__ import annotations

import base64
import hashlib
import math
import struct
from collections.abc import Mapping

from ._chat import optional_int, require_model
from ._errors import JSON, BadRequest
from ._tokens import embedding_input_tokens_for

MODELS = (
    "gpt-4o-mini",
    "gpt-4o",
    "gpt-4.1-mini",
    "gpt-4.1",
    "o4-mini",
    "text-embedding-3-small",
)
"""Model ids ``/v1/models`` lists. Any model name is accepted by the other endpoints."""

_CREATED = 1_700_000_000
DEFAULT_DIMENSIONS = 16


def model(model_id: str) -> JSON:
    """One ``model`` object."""
    return {"id": model_id, "object": "model", "created": _CREATED, "owned_by": "llmtel-demo"}


def model_list() -> JSON:
    """The ``list`` of models."""
    return {"object": "list", "data": [model(m) for m in MODELS]}


def embeddings(body: Mapping[str, object]) -> JSON:
    """The embeddings body: one unit vector per input, derived from a hash of the input.

    Raises:
        BadRequest: ``model`` or ``input`` is missing or malformed.
    """
    model_id = require_model(body)
    raw = body.get("input")
    if isinstance(raw, str) or (raw and isinstance(raw, list) and isinstance(raw[0], int)):
        inputs: list[object] = [raw]
    elif isinstance(raw, list) and raw:
        inputs = list(raw)
    else:
        raise BadRequest("'input' must be a non-empty string or array.", "input")
    if not all(isinstance(x, str) or _is_token_array(x) for x in inputs):
        raise BadRequest("'input' items must be strings or arrays of token ids.", "input")
    dimensions = optional_int(body, "dimensions", minimum=1) or DEFAULT_DIMENSIONS
    encoding = body.get("encoding_format", "float")
    if encoding not in ("float", "base64"):
        raise BadRequest("'encoding_format' must be 'float' or 'base64'.", "encoding_format")
    data: list[JSON] = []
    for index, item in enumerate(inputs):
        vector = _vector(repr(item), min(dimensions, 4096))
        encoded: object = vector
        if encoding == "base64":
            encoded = base64.b64encode(struct.pack(f"<{len(vector)}f", *vector)).decode()
        data.append({"object": "embedding", "index": index, "embedding": encoded})
    tokens = embedding_input_tokens_for(inputs)
    return {
        "object": "list",
        "data": data,
        "model": model_id,
        "usage": {"prompt_tokens": tokens, "total_tokens": tokens},
    }


def _is_token_array(item: object) -> bool:
    return isinstance(item, list) and all(
        isinstance(x, int) and not isinstance(x, bool) for x in item
    )


def _vector(seed: str, dimensions: int) -> list[float]:
    values: list[float] = []
    counter = 0
    while len(values) < dimensions:
        digest = hashlib.sha256(f"{counter}:{seed}".encode()).digest()
        values.extend(x / 2**31 - 1.0 for x in struct.unpack("<8I", digest))
        counter += 1
    values = values[:dimensions]
    norm = math.sqrt(sum(v * v for v in values)) or 1.0
    return [v / norm for v in values]
