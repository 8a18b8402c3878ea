"""The demo LLM provider and traffic generator.

``DemoServer`` is an OpenAI-compatible server with deterministic token counts and
scripted failures; ``run_traffic`` sends simulated chat traffic through the openai SDK.
The ``llmtel demo serve`` and ``llmtel demo traffic`` commands wrap them.
"""

from ._config import DemoConfig
from ._summary import TrafficSummary, format_summary
from ._tokens import (
    MESSAGE_OVERHEAD_TOKENS,
    completion_tokens_for,
    embedding_input_tokens_for,
    prompt_tokens_for,
    response_input_tokens_for,
)
from .server import DemoServer
from .traffic import TrafficOptions, run_traffic

__all__ = [
    "MESSAGE_OVERHEAD_TOKENS",
    "DemoConfig",
    "DemoServer",
    "TrafficOptions",
    "TrafficSummary",
    "completion_tokens_for",
    "embedding_input_tokens_for",
    "format_summary",
    "prompt_tokens_for",
    "response_input_tokens_for",
    "run_traffic",
]
