"""The HTTP side of the demo server: routing, JSON bodies, SSE, failures and latency."""

from __future__ import annotations

import dataclasses
import json
import logging
import socket
import time
from collections.abc import Iterable, Mapping
from http.server import BaseHTTPRequestHandler
from typing import TYPE_CHECKING
from urllib.parse import unquote, urlsplit

from . import _catalog
from ._chat import ChatRequest, chat_chunks, chat_completion, parse_chat_request
from ._errors import JSON, BadRequest, ErrorReply, error_reply, injected_failure
from ._generation import Generation, generate, new_id
from ._judge import JudgeRequest, judge_request
from ._plan import DirectiveError, Plan
from ._responses import ResponseBuilder, ResponsesRequest, parse_responses_request
from ._tokens import count_words

if TYPE_CHECKING:
    from .server import DemoHTTPServer

logger = logging.getLogger("llmtel.demo")

MAX_BODY_BYTES = 32 * 1024 * 1024
CHAT_PATH = "/v1/chat/completions"
RESPONSES_PATH = "/v1/responses"
EMBEDDINGS_PATH = "/v1/embeddings"


class _Stopped(Exception):
    """The server is stopping: drop the connection without answering."""


class DemoRequestHandler(BaseHTTPRequestHandler):
    """Answers one connection's requests like the OpenAI API would, per plan."""

    protocol_version = "HTTP/1.1"
    disable_nagle_algorithm = True  # headers and body are separate writes: no 40 ms stalls
    server: DemoHTTPServer

    def do_GET(self) -> None:
        """Route a GET request."""
        self._dispatch("GET")

    def do_POST(self) -> None:
        """Route a POST request."""
        self._dispatch("POST")

    def log_message(self, format: str, *args: object) -> None:
        """Send http.server's messages to the ``llmtel.demo`` logger at DEBUG."""
        logger.debug(format, *args)

    # -- routing ---------------------------------------------------------------------------

    def _dispatch(self, method: str) -> None:
        self._started = time.monotonic()
        self._request_id = new_id("req_")
        path = unquote(urlsplit(self.path).path).rstrip("/") or "/"
        try:
            if method == "GET" and path == "/healthz":
                self._send_json(200, {"status": "ok"})
            elif method == "GET" and path == "/v1/models":
                self._send_json(200, _catalog.model_list())
            elif method == "GET" and path.startswith("/v1/models/"):
                model_id = path.removeprefix("/v1/models/")
                self._send_json(200, _catalog.model(model_id))
            elif method == "POST" and path in (CHAT_PATH, RESPONSES_PATH, EMBEDDINGS_PATH):
                self._generate(path)
            else:
                self._discard_body()
                self._send_error(
                    error_reply(404, f"Invalid URL ({method} {path})", "invalid_request_error")
                )
        except (_Stopped, OSError):
            self.close_connection = True

    def _generate(self, path: str) -> None:
        body = self._read_json()
        if body is None:
            return
        request: ChatRequest | ResponsesRequest | JSON
        judge: JudgeRequest | None = None
        try:
            if path == CHAT_PATH:
                request = parse_chat_request(body)
                judge = judge_request(body, {k.lower(): v for k, v in self.headers.items()})
                if judge is not None:
                    self.server.judge_arrived()
            elif path == RESPONSES_PATH:
                request = parse_responses_request(body)
            else:
                request = _catalog.embeddings(body)
            plan = self.server.planner.plan({k.lower(): v for k, v in self.headers.items()})
        except (BadRequest, DirectiveError) as exc:
            param = exc.param if isinstance(exc, BadRequest) else None
            self.server.record(path, "400")
            self._send_error(error_reply(400, str(exc), "invalid_request_error", param=param))
            return
        if not self._survive(path, plan):
            return
        self.server.record(path, "200")
        if isinstance(request, ChatRequest):
            self._answer_chat(request, plan, judge)
        elif isinstance(request, ResponsesRequest):
            self._answer_responses(request, plan)
        else:
            self._send_json(200, request)

    def _generation(
        self, plan: Plan, model: str, prompt_tokens: int, cap: int | None
    ) -> Generation:
        config = self.server.planner.config
        gen = generate(plan, model=model, prompt_tokens=prompt_tokens, cap=cap, config=config)
        logger.info(
            "%s in=%d out=%d finish=%s",
            model,
            prompt_tokens,
            gen.completion_tokens,
            gen.finish_reason,
        )
        return gen

    def _answer_chat(
        self, request: ChatRequest, plan: Plan, judge: JudgeRequest | None = None
    ) -> None:
        gen = self._generation(plan, request.model, request.prompt_tokens, request.cap)
        if judge is not None and gen.refusal is None and gen.tool_call is None:
            # Acting as a judge (structured outputs): the answer is the verdict's JSON.
            verdict = judge.verdict()
            text = judge.answer(verdict)
            gen = dataclasses.replace(
                gen,
                text=text,
                completion_tokens=count_words(text) + gen.reasoning_tokens,
                finish_reason=plan.finish_reason or "stop",
            )
            # A client that gave up (or died) never sees the verdict: not counted as given.
            delivered = not self._client_gone()
            self.server.record_judge(judge, verdict, delivered=delivered)
            if not delivered:
                self.close_connection = True
                return
        completion_id = new_id("chatcmpl-")
        if not request.stream:
            self._send_json(200, chat_completion(gen, completion_id=completion_id, n=request.n))
            return
        chunks = chat_chunks(
            gen, completion_id=completion_id, n=request.n, include_usage=request.include_usage
        )
        self._send_events(((None, chunk) for chunk in chunks), done=True)

    def _answer_responses(self, request: ResponsesRequest, plan: Plan) -> None:
        gen = self._generation(plan, request.model, request.prompt_tokens, request.cap)
        builder = ResponseBuilder(
            gen, request, response_id=new_id("resp_"), message_id=new_id("msg_")
        )
        if not request.stream:
            self._send_json(200, builder.response())
            return
        self._send_events(((str(e["type"]), e) for e in builder.events()), done=False)

    def _survive(self, path: str, plan: Plan) -> bool:
        """Apply the plan's latency and failure; return whether to answer normally.

        429, 400, 401 and content_filter (a 400) answer at once; a timeout hangs
        ``timeout_s`` then answers 504; 500 and 503 answer after the latency, like a
        success would.
        """
        config = self.server.planner.config
        failure = plan.failure
        if failure is not None:
            logger.info("%s injected failure %s", path, failure)
        if failure in ("429", "400", "401", "content_filter"):
            self.server.record(path, "400" if failure == "content_filter" else failure)
            self._send_error(injected_failure(failure))
            return False
        if failure == "timeout":
            self.server.record(path, "timeout")
            self._sleep(config.timeout_s)
            self._send_error(injected_failure("timeout", config.timeout_s))
            return False
        self._sleep(plan.latency_ms / 1000)
        if failure is not None:
            self.server.record(path, failure)
            self._send_error(injected_failure(failure))
            return False
        return True

    def _client_gone(self) -> bool:
        """Whether the client closed its end of the connection (a peek sees end of file)."""
        try:
            data = self.connection.recv(1, socket.MSG_PEEK | socket.MSG_DONTWAIT)
        except BlockingIOError:
            return False
        except OSError:
            return True
        return bool(data == b"")

    def _sleep(self, seconds: float) -> None:
        if seconds > 0 and self.server.stopping.wait(seconds):
            raise _Stopped
        if self.server.stopping.is_set():
            raise _Stopped

    # -- reading ---------------------------------------------------------------------------

    def _read_body(self) -> bytes | None:
        if self.headers.get("Transfer-Encoding", "").lower() == "chunked":
            self.close_connection = True
            return None
        try:
            length = int(self.headers.get("Content-Length", "0"))
        except ValueError:
            length = -1
        if not 0 <= length <= MAX_BODY_BYTES:
            self.close_connection = True
            return None
        return self.rfile.read(length)

    def _discard_body(self) -> None:
        if self.command == "POST":
            self._read_body()

    def _read_json(self) -> Mapping[str, object] | None:
        raw = self._read_body()
        if raw is None:
            message = "The request needs a JSON body with a Content-Length header."
        elif not raw.strip():
            message = "The request body is empty; send a JSON object."
        else:
            try:
                body = json.loads(raw)
            except (UnicodeDecodeError, json.JSONDecodeError) as exc:
                message = f"We could not parse the JSON body of your request ({exc})."
            else:
                if isinstance(body, dict):
                    return body
                message = "The request body must be a JSON object."
        self._send_error(error_reply(400, message, "invalid_request_error"))
        return None

    # -- writing ---------------------------------------------------------------------------

    def _start(self, status: int, headers: Iterable[tuple[str, str]]) -> None:
        self.send_response(status)
        self.send_header("x-request-id", self._request_id)
        elapsed_ms = round((time.monotonic() - self._started) * 1000)
        self.send_header("openai-processing-ms", str(elapsed_ms))
        for name, value in headers:
            self.send_header(name, value)
        self.end_headers()

    def _send_json(self, status: int, body: JSON, headers: Iterable[tuple[str, str]] = ()) -> None:
        data = json.dumps(body, separators=(",", ":")).encode()
        self._start(
            status,
            [
                ("Content-Type", "application/json"),
                ("Content-Length", str(len(data))),
                *headers,
            ],
        )
        self.wfile.write(data)

    def _send_error(self, reply: ErrorReply) -> None:
        self._send_json(reply.status, reply.body, reply.headers)

    def _send_events(self, events: Iterable[tuple[str | None, JSON]], *, done: bool) -> None:
        """Stream server-sent events in chunked transfer encoding."""
        self._start(
            200,
            [
                ("Content-Type", "text/event-stream; charset=utf-8"),
                ("Cache-Control", "no-cache"),
                ("Transfer-Encoding", "chunked"),
            ],
        )
        delay = self.server.planner.config.chunk_delay_ms / 1000
        for number, (event, data) in enumerate(events):
            if number:
                self._sleep(delay)
            prefix = f"event: {event}\n" if event else ""
            self._write_chunk(f"{prefix}data: {json.dumps(data, separators=(',', ':'))}\n\n")
        if done:
            self._write_chunk("data: [DONE]\n\n")
        self.wfile.write(b"0\r\n\r\n")

    def _write_chunk(self, text: str) -> None:
        data = text.encode()
        self.wfile.write(b"%x\r\n%s\r\n" % (len(data), data))
