"""`llmtel.outcome` and `error.type` for each way a call can fail or be refused."""

from __future__ import annotations

import contextlib
import socket
from dataclasses import dataclass

import openai
import pytest
from opentelemetry.trace import StatusCode

from llmtel.demo.server import DemoServer
from llmtel.testing import Capture

USER = [{"role": "user", "content": "Summarise ticket 42"}]


@dataclass(frozen=True)
class Failure:
    """A failure the demo server injects and what llmtel must report for it."""

    header: str
    exception: type[openai.OpenAIError]
    outcome: str
    status_code: int | None


FAILURES = [
    Failure("429", openai.RateLimitError, "rate_limit", 429),
    Failure("500", openai.InternalServerError, "server_error", 500),
    Failure("503", openai.InternalServerError, "server_error", 503),
    Failure("400", openai.BadRequestError, "bad_request", 400),
    Failure("401", openai.AuthenticationError, "auth", 401),
    Failure("timeout", openai.APITimeoutError, "timeout", None),
]


@pytest.mark.parametrize("failure", FAILURES, ids=[f.header for f in FAILURES])
def test_failure_is_classified_and_reraised(
    failure: Failure, telemetry: Capture, client: openai.OpenAI
) -> None:
    """Verify that each failure re-raises the SDK's exception and sets outcome and error.type."""
    with pytest.raises(failure.exception) as caught:
        client.chat.completions.create(
            model="gpt-4o-mini",
            messages=USER,  # type: ignore[arg-type]
            extra_headers={"x-llmtel-demo-fail": failure.header},
            timeout=0.3,
        )
    assert type(caught.value) is failure.exception
    error_type = failure.exception.__name__

    (span,) = telemetry.spans()
    attrs = span.attributes or {}
    assert attrs["llmtel.outcome"] == failure.outcome
    assert attrs["error.type"] == error_type
    assert attrs.get("http.response.status_code") == failure.status_code
    assert span.status.status_code is StatusCode.ERROR
    assert span.status.description == error_type
    (event,) = [e for e in span.events if e.name == "exception"]
    assert (event.attributes or {})["exception.message"] == str(caught.value)
    assert "gen_ai.response.id" not in attrs

    (record,) = telemetry.logs()
    log = record.log_record
    assert (log.attributes or {})["llmtel.outcome"] == failure.outcome
    assert (log.attributes or {})["error.type"] == error_type
    assert log.severity_text == "ERROR"
    assert log.body is not None
    assert str(log.body).startswith(f"chat gpt-4o-mini {failure.outcome} ")

    (duration,) = telemetry.histogram("gen_ai.client.operation.duration")
    assert dict(duration.attributes or {}) == {
        "gen_ai.operation.name": "chat",
        "gen_ai.provider.name": "openai",
        "gen_ai.request.model": "gpt-4o-mini",
        "error.type": error_type,
        "llmtel.outcome": failure.outcome,
    }
    assert telemetry.histogram("gen_ai.client.token.usage") == []


def test_unreachable_server_is_a_connection_error(telemetry: Capture) -> None:
    """Verify that a refused connection is reported as `connection_error` / `APIConnectionError`."""
    with socket.socket() as sock:
        sock.bind(("127.0.0.1", 0))
        port = sock.getsockname()[1]
    with (
        openai.OpenAI(
            base_url=f"http://127.0.0.1:{port}/v1", api_key="test-key", max_retries=0
        ) as dead,
        pytest.raises(openai.APIConnectionError) as caught,
    ):
        dead.chat.completions.create(model="gpt-4o-mini", messages=USER)  # type: ignore[arg-type]
    assert type(caught.value) is openai.APIConnectionError
    (span,) = telemetry.spans()
    attrs = span.attributes or {}
    assert attrs["llmtel.outcome"] == "connection_error"
    assert attrs["error.type"] == "APIConnectionError"
    assert attrs["server.port"] == port


@pytest.mark.parametrize(
    ("headers", "outcome", "finish_reasons", "severity"),
    [
        (
            {"x-llmtel-demo-finish-reason": "content_filter"},
            "content_filter",
            ("content_filter",),
            "WARN",
        ),
        ({"x-llmtel-demo-refusal": "I can't help with that."}, "refusal", ("stop",), "WARN"),
        ({"x-llmtel-demo-finish-reason": "length"}, "ok", ("length",), "INFO"),
    ],
    ids=["content_filter", "refusal", "length"],
)
def test_answered_calls_report_filter_and_refusal(
    headers: dict[str, str],
    outcome: str,
    finish_reasons: tuple[str, ...],
    severity: str,
    telemetry: Capture,
    client: openai.OpenAI,
) -> None:
    """Verify that a filtered or refused answer is a successful call with its own outcome."""
    client.chat.completions.create(
        model="gpt-4o-mini",
        messages=USER,  # type: ignore[arg-type]
        extra_headers=headers,
    )
    (span,) = telemetry.spans()
    attrs = span.attributes or {}
    assert attrs["llmtel.outcome"] == outcome
    assert attrs["gen_ai.response.finish_reasons"] == finish_reasons
    assert "error.type" not in attrs
    assert span.status.status_code is StatusCode.UNSET
    (record,) = telemetry.logs()
    assert record.log_record.severity_text == severity
    assert (record.log_record.attributes or {})["llmtel.outcome"] == outcome


def test_refusal_text_is_the_output_preview(telemetry: Capture, client: openai.OpenAI) -> None:
    """Verify that a refusal (content null) shows its text as the output preview."""
    client.chat.completions.create(
        model="gpt-4o-mini",
        messages=USER,  # type: ignore[arg-type]
        extra_headers={"x-llmtel-demo-refusal": "I can't help with that."},
    )
    (record,) = telemetry.logs()
    assert (record.log_record.attributes or {})["llmtel.output.preview"] == (
        "I can't help with that."
    )


def test_outcome_counts_match_the_demo_server(
    telemetry: Capture, client: openai.OpenAI, server: DemoServer
) -> None:
    """Verify that the duration histogram counts calls per outcome exactly as they were sent."""
    sent = {"ok": 3, "rate_limit": 2, "server_error": 1}
    plan = ["none"] * 3 + ["429"] * 2 + ["500"]
    for fail in plan:
        with contextlib.suppress(openai.APIStatusError):
            client.chat.completions.create(
                model="gpt-4o-mini",
                messages=USER,  # type: ignore[arg-type]
                extra_headers={"x-llmtel-demo-fail": fail},
            )
    counts = {
        str((p.attributes or {})["llmtel.outcome"]): p.count
        for p in telemetry.histogram("gen_ai.client.operation.duration")
    }
    assert counts == sent


def test_sdk_usage_errors_are_recorded_as_error(telemetry: Capture, client: openai.OpenAI) -> None:
    """Verify that a call the SDK rejects (no model) re-raises and is an `error` span `chat`."""
    with pytest.raises(TypeError):
        client.chat.completions.create(messages=USER)  # type: ignore[call-overload]
    (span,) = telemetry.spans()
    assert span.name == "chat"
    assert (span.attributes or {})["llmtel.outcome"] == "error"
    assert (span.attributes or {})["error.type"] == "TypeError"
    (record,) = telemetry.logs()
    assert str(record.log_record.body).startswith("chat - error ")


def test_filter_refusal_and_filtered_prompt_are_three_outcomes(
    telemetry: Capture, client: openai.OpenAI
) -> None:
    """Verify case 6: a 200 `content_filter`, a 400 `content_filter` and a refusal differ."""
    client.chat.completions.create(
        model="gpt-4o-mini",
        messages=USER,  # type: ignore[arg-type]
        extra_headers={"x-llmtel-demo-finish-reason": "content_filter"},
    )
    with pytest.raises(openai.BadRequestError) as caught:
        client.chat.completions.create(
            model="gpt-4o-mini",
            messages=USER,  # type: ignore[arg-type]
            extra_headers={"x-llmtel-demo-fail": "content_filter"},
        )
    assert caught.value.code == "content_filter"
    client.chat.completions.create(
        model="gpt-4o-mini",
        messages=USER,  # type: ignore[arg-type]
        extra_headers={"x-llmtel-demo-refusal": "I can't help with that."},
    )
    filtered, blocked, refused = (dict(s.attributes or {}) for s in telemetry.spans())
    assert (filtered["llmtel.outcome"], filtered["gen_ai.response.finish_reasons"]) == (
        "content_filter",
        ("content_filter",),
    )
    assert "error.type" not in filtered
    assert (blocked["llmtel.outcome"], blocked["error.type"]) == (
        "content_filter",
        "BadRequestError",
    )
    assert blocked["http.response.status_code"] == 400
    assert (refused["llmtel.outcome"], refused["gen_ai.response.finish_reasons"]) == (
        "refusal",
        ("stop",),
    )
    assert "error.type" not in refused
    counts: dict[object, int] = {}
    for point in telemetry.histogram("gen_ai.client.operation.duration"):
        outcome = (point.attributes or {})["llmtel.outcome"]
        counts[outcome] = counts.get(outcome, 0) + point.count
    assert counts == {"content_filter": 2, "refusal": 1}


@pytest.mark.parametrize("stream", [False, True], ids=["create", "stream"])
def test_responses_refusal_and_content_filter(
    stream: bool, telemetry: Capture, client: openai.OpenAI
) -> None:
    """Verify that a Responses refusal item and an incomplete `content_filter` are outcomes."""
    for headers in (
        {"x-llmtel-demo-refusal": "I can't help with that."},
        {"x-llmtel-demo-finish-reason": "content_filter"},
    ):
        if stream:  # (the `responses.stream()` helper raises on an incomplete response)
            list(
                client.responses.create(
                    model="gpt-4o-mini", input="hi", stream=True, extra_headers=headers
                )
            )
        else:
            client.responses.create(model="gpt-4o-mini", input="hi", extra_headers=headers)
    refused, filtered = (dict(s.attributes or {}) for s in telemetry.spans())
    assert (refused["llmtel.outcome"], refused["gen_ai.response.finish_reasons"]) == (
        "refusal",
        ("stop",),
    )
    assert (filtered["llmtel.outcome"], filtered["gen_ai.response.finish_reasons"]) == (
        "content_filter",
        ("content_filter",),
    )
    (refusal_log, _) = telemetry.logs()
    assert (refusal_log.log_record.attributes or {})["llmtel.output.preview"] == (
        "I can't help with that."
    )


def test_streamed_refusal_and_filter(telemetry: Capture, client: openai.OpenAI) -> None:
    """Verify that streamed chat answers get the refusal and content-filter outcomes too."""
    for headers in (
        {"x-llmtel-demo-refusal": "No."},
        {"x-llmtel-demo-finish-reason": "content_filter"},
    ):
        list(
            client.chat.completions.create(
                model="gpt-4o-mini",
                messages=USER,  # type: ignore[arg-type]
                stream=True,
                extra_headers=headers,
            )
        )
    outcomes = [(s.attributes or {})["llmtel.outcome"] for s in telemetry.spans()]
    assert outcomes == ["refusal", "content_filter"]
