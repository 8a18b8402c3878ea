"""Error responses in OpenAI's shape: ``{"error": {"message", "type", "param", "code"}}``."""

from __future__ import annotations

from dataclasses import dataclass

JSON = dict[str, object]


class BadRequest(Exception):
    """The request body is not one the endpoint accepts (answered with a 400)."""

    def __init__(self, message: str, param: str | None = None) -> None:
        super().__init__(message)
        self.message = message
        self.param = param


@dataclass(frozen=True)
class ErrorReply:
    """A status, an OpenAI-shaped body and extra headers."""

    status: int
    body: JSON
    headers: tuple[tuple[str, str], ...] = ()


def error_reply(
    status: int,
    message: str,
    type_: str,
    code: str | None = None,
    param: str | None = None,
    headers: tuple[tuple[str, str], ...] = (),
) -> ErrorReply:
    """Build an error reply the openai SDK turns into the matching exception."""
    body: JSON = {"error": {"message": message, "type": type_, "param": param, "code": code}}
    return ErrorReply(status, body, headers)


def injected_failure(failure: str, timeout_s: float = 0.0) -> ErrorReply:
    """The reply for an injected failure: ``429|500|503|400|401|timeout`` (504)|content_filter.

    ``content_filter`` is a 400 whose error code is ``content_filter``, the shape Azure
    OpenAI answers a prompt its content filter blocks with.
    """
    note = "(llmtel demo: injected failure)"
    if failure == "429":
        return error_reply(
            429,
            f"Rate limit reached for requests. Please try again in 1s. {note}",
            "requests",
            "rate_limit_exceeded",
            headers=(("retry-after", "1"), ("x-ratelimit-remaining-requests", "0")),
        )
    if failure == "500":
        return error_reply(
            500, f"The server had an error while processing your request. {note}", "server_error"
        )
    if failure == "503":
        return error_reply(
            503,
            f"The engine is currently overloaded, please try again later. {note}",
            "server_error",
            "service_unavailable",
        )
    if failure == "400":
        return error_reply(400, f"Invalid request. {note}", "invalid_request_error")
    if failure == "401":
        return error_reply(
            401, f"Incorrect API key provided. {note}", "invalid_request_error", "invalid_api_key"
        )
    if failure == "content_filter":
        return error_reply(
            400,
            "The response was filtered due to the prompt triggering the content management "
            f"policy. {note}",
            "invalid_request_error",
            "content_filter",
            param="prompt",
        )
    if failure == "timeout":
        return error_reply(504, f"Timed out after {timeout_s:g} s. {note}", "timeout", "timeout")
    raise ValueError(f"unknown failure {failure!r}")
