"""Names llmtel writes on spans, log records and metrics.

These strings are a contract with the collector config, the dashboards and the stack
tests: change one only together with them.
"""

from __future__ import annotations

from typing import Final, Literal

# GenAI semantic conventions v1.41.
GEN_AI_OPERATION_NAME: Final = "gen_ai.operation.name"
GEN_AI_PROVIDER_NAME: Final = "gen_ai.provider.name"
GEN_AI_CONVERSATION_ID: Final = "gen_ai.conversation.id"
GEN_AI_REQUEST_MODEL: Final = "gen_ai.request.model"
GEN_AI_REQUEST_TEMPERATURE: Final = "gen_ai.request.temperature"
GEN_AI_REQUEST_MAX_TOKENS: Final = "gen_ai.request.max_tokens"
GEN_AI_REQUEST_TOP_P: Final = "gen_ai.request.top_p"
GEN_AI_REQUEST_FREQUENCY_PENALTY: Final = "gen_ai.request.frequency_penalty"
GEN_AI_REQUEST_PRESENCE_PENALTY: Final = "gen_ai.request.presence_penalty"
GEN_AI_REQUEST_SEED: Final = "gen_ai.request.seed"
GEN_AI_REQUEST_STOP_SEQUENCES: Final = "gen_ai.request.stop_sequences"
GEN_AI_REQUEST_CHOICE_COUNT: Final = "gen_ai.request.choice.count"
GEN_AI_REQUEST_STREAM: Final = "gen_ai.request.stream"
GEN_AI_RESPONSE_MODEL: Final = "gen_ai.response.model"
GEN_AI_RESPONSE_ID: Final = "gen_ai.response.id"
GEN_AI_RESPONSE_FINISH_REASONS: Final = "gen_ai.response.finish_reasons"
GEN_AI_RESPONSE_TIME_TO_FIRST_CHUNK: Final = "gen_ai.response.time_to_first_chunk"
GEN_AI_USAGE_INPUT_TOKENS: Final = "gen_ai.usage.input_tokens"
GEN_AI_USAGE_OUTPUT_TOKENS: Final = "gen_ai.usage.output_tokens"
GEN_AI_USAGE_CACHE_READ_INPUT_TOKENS: Final = "gen_ai.usage.cache_read.input_tokens"
GEN_AI_USAGE_CACHE_CREATION_INPUT_TOKENS: Final = "gen_ai.usage.cache_creation.input_tokens"
GEN_AI_USAGE_REASONING_OUTPUT_TOKENS: Final = "gen_ai.usage.reasoning.output_tokens"
GEN_AI_TOKEN_TYPE: Final = "gen_ai.token.type"  # noqa: S105 - not a secret
GEN_AI_REQUEST_ENCODING_FORMATS: Final = "gen_ai.request.encoding_formats"
GEN_AI_EMBEDDINGS_DIMENSION_COUNT: Final = "gen_ai.embeddings.dimension.count"

# Generic semantic conventions.
ERROR_TYPE: Final = "error.type"
SERVER_ADDRESS: Final = "server.address"
SERVER_PORT: Final = "server.port"
HTTP_RESPONSE_STATUS_CODE: Final = "http.response.status_code"
USER_ID: Final = "user.id"
SESSION_ID: Final = "session.id"

# llmtel's own.
LLMTEL_OUTCOME: Final = "llmtel.outcome"
LLMTEL_LATENCY_MS: Final = "llmtel.latency_ms"
LLMTEL_INPUT_PREVIEW: Final = "llmtel.input.preview"
LLMTEL_SYSTEM_PREVIEW: Final = "llmtel.system.preview"
LLMTEL_OUTPUT_PREVIEW: Final = "llmtel.output.preview"
LLMTEL_COST_USD: Final = "llmtel.cost.usd"
LLMTEL_ENDPOINT: Final = "llmtel.endpoint"
LLMTEL_PROMPT_VERSION: Final = "llmtel.prompt.version"
LLMTEL_STREAM_END: Final = "llmtel.stream.end"
LLMTEL_USAGE_MISSING: Final = "llmtel.usage.missing"
LLMTEL_CALL_ID: Final = "llmtel.call.id"
LLMTEL_CONTENT_INPUT: Final = "llmtel.content.input"
LLMTEL_CONTENT_OUTPUT: Final = "llmtel.content.output"
LLMTEL_CONTENT_TRUNCATED: Final = "llmtel.content.truncated"
LLMTEL_FEEDBACK_KIND: Final = "llmtel.feedback.kind"
LLMTEL_FEEDBACK_COMMENT: Final = "llmtel.feedback.comment"

# Event names of llmtel's log records: one call record per call, one content record
# per call when capture is "full", one feedback record per ``llmtel.feedback``.
CALL_EVENT_NAME: Final = "llmtel.call"
CONTENT_EVENT_NAME: Final = "llmtel.content"
FEEDBACK_EVENT_NAME: Final = "llmtel.feedback"

# Internal failures of llmtel itself (caught, logged and counted, never raised).
METRIC_EMITTER_ERRORS: Final = "llmtel.emitter.errors"

# Metrics (semconv names, units and advisory bucket boundaries).
METRIC_OPERATION_DURATION: Final = "gen_ai.client.operation.duration"
METRIC_TOKEN_USAGE: Final = "gen_ai.client.token.usage"  # noqa: S105 - not a secret
DURATION_BUCKETS: Final = (
    0.01,
    0.02,
    0.04,
    0.08,
    0.16,
    0.32,
    0.64,
    1.28,
    2.56,
    5.12,
    10.24,
    20.48,
    40.96,
    81.92,
)
TOKEN_BUCKETS: Final = (
    1,
    4,
    16,
    64,
    256,
    1024,
    4096,
    16384,
    65536,
    262144,
    1048576,
    4194304,
    16777216,
    67108864,
)

OPERATION_CHAT: Final = "chat"
OPERATION_EMBEDDINGS: Final = "embeddings"
PROVIDER_OPENAI: Final = "openai"

PREVIEW_MAX_CHARS: Final = 200
CONTENT_MAX_CHARS: Final = 1_000_000  # per content attribute; beyond it the text is cut

Outcome = Literal[
    "ok",
    "rate_limit",
    "timeout",
    "connection_error",
    "server_error",
    "bad_request",
    "auth",
    "content_filter",
    "refusal",
    "error",
]
"""The low-cardinality result of one call, written as ``llmtel.outcome``."""

StreamEnd = Literal["completed", "closed_early", "abandoned", "error"]
"""How a streamed call ended, written as ``llmtel.stream.end``."""

FeedbackKind = Literal["thumbs_up", "thumbs_down", "retried", "abandoned", "comment"]
"""What the user did about an answer, written as ``llmtel.feedback.kind``."""
