"""Embeddings (``embeddings.create``): request and answer. The answer has no text."""

from __future__ import annotations

from collections.abc import Mapping
from typing import Any

from llmtel import _attributes as attr
from llmtel._call import Attrs, Request, Result, cap, field_of, integer, read_kwargs, to_json
from llmtel._state import CaptureContent


def request_attributes(kwargs: Mapping[str, Any]) -> Attrs:
    """Return the ``gen_ai.*`` request attributes for ``embeddings.create`` arguments."""
    attrs: Attrs = {
        attr.GEN_AI_OPERATION_NAME: attr.OPERATION_EMBEDDINGS,
        attr.GEN_AI_PROVIDER_NAME: attr.PROVIDER_OPENAI,
    }
    model = read_kwargs(kwargs, "model")
    if isinstance(model, str):
        attrs[attr.GEN_AI_REQUEST_MODEL] = model
    encoding = read_kwargs(kwargs, "encoding_format")
    if isinstance(encoding, str):
        attrs[attr.GEN_AI_REQUEST_ENCODING_FORMATS] = [encoding]
    dimensions = integer(read_kwargs(kwargs, "dimensions"))
    if dimensions is not None:
        attrs[attr.GEN_AI_EMBEDDINGS_DIMENSION_COUNT] = dimensions
    return attrs


def request(kwargs: Mapping[str, Any], capture: CaptureContent) -> Request:
    """Describe an embeddings request; the input preview is the first input text."""
    result = Request(attr.OPERATION_EMBEDDINGS, request_attributes(kwargs))
    if capture == "none":
        return result
    input_ = read_kwargs(kwargs, "input")
    first: object = input_
    if isinstance(input_, list | tuple) and input_:
        first = input_[0]
    if isinstance(first, str):
        result.input_preview = cap(first)
    if capture == "full" and isinstance(input_, str | list | tuple):
        result.input_content = to_json(input_)
    return result


def result_from_embeddings(response: object, capture: CaptureContent = "preview") -> Result:
    """Read a ``CreateEmbeddingResponse`` into a ``Result`` (input tokens only)."""
    result = Result(responded=True)
    model = field_of(response, "model")
    if isinstance(model, str):
        result.response_model = model
    usage = field_of(response, "usage")
    result.input_tokens = integer(field_of(usage, "prompt_tokens"))
    return result
