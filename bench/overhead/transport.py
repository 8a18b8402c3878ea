"""An in-process ``httpx2`` transport that answers the openai SDK with pre-rendered bodies.

No sockets: the SDK builds its request, the transport hands back bytes rendered once by
``bench.overhead.bodies`` (from ``llmtel.demo``'s own response generators), and the SDK
parses them as it would a network answer. Standard library, ``httpx2`` and ``openai``
only, so it runs in every comparator's virtualenv.
"""

from __future__ import annotations

import json
from pathlib import Path
from typing import Any

import httpx2
from openai import OpenAI

SHAPE_HEADER = "x-bench-shape"
BASE_URL = "http://bench.invalid/v1"


def load_bodies(directory: Path) -> dict[str, tuple[str, bytes]]:
    """Return SHAPE -> (content type, body) from the files ``bodies.render`` wrote."""
    index = json.loads((directory / "index.json").read_text())
    return {
        shape: (entry["content_type"], (directory / entry["file"]).read_bytes())
        for shape, entry in index["shapes"].items()
    }


def transport(bodies: dict[str, tuple[str, bytes]]) -> httpx2.MockTransport:
    """A transport answering each request with the body of the shape named in its header."""
    responses = {
        shape: (200, {"content-type": content_type, "x-request-id": "req_bench"}, body)
        for shape, (content_type, body) in bodies.items()
    }

    def handle(request: httpx2.Request) -> httpx2.Response:
        status, headers, body = responses[request.headers[SHAPE_HEADER]]
        return httpx2.Response(status, headers=headers, content=body)

    return httpx2.MockTransport(handle)


def client(bodies: dict[str, tuple[str, bytes]]) -> OpenAI:
    """An ``OpenAI`` client whose calls never leave the process."""
    return OpenAI(
        api_key="sk-bench-not-a-key",
        base_url=BASE_URL,
        max_retries=0,
        http_client=httpx2.Client(transport=transport(bodies)),
    )


def request_kwargs(shape: str, spec: dict[str, Any]) -> dict[str, Any]:
    """The keyword arguments of one call of ``shape`` (``spec`` comes from index.json)."""
    return {**spec["kwargs"], "extra_headers": {SHAPE_HEADER: shape}}


def call(openai_client: OpenAI, api: str, kwargs: dict[str, Any]) -> int:
    """Make one call the way an app would; return how many stream items it read (0: none)."""
    if api == "responses":
        openai_client.responses.create(**kwargs)
        return 0
    result = openai_client.chat.completions.create(**kwargs)
    if kwargs.get("stream"):
        count = 0
        for _chunk in result:
            count += 1
        return count
    return 0
