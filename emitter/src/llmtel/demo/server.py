"""``DemoServer``: an OpenAI-compatible HTTP server with scripted, deterministic behaviour.

A stand-in for the LLM provider in tests, benchmarks and ``make demo``. It answers
``POST /v1/chat/completions`` (JSON or SSE), ``POST /v1/responses`` (JSON or SSE),
``POST /v1/embeddings``, ``GET /v1/models`` and ``GET /healthz``, with token counts
from documented rules (see ``llmtel.demo._tokens``), failures and latency from
``DemoConfig`` and per-request ``x-llmtel-demo-*`` headers (see ``llmtel.demo._plan``).
With ``x-llmtel-demo-judge``, a chat request asking for a JSON schema (structured
outputs) gets a judge's verdict that fits it, decided by markers in the judged text
(see ``llmtel.demo._judge``).
"""

from __future__ import annotations

import contextlib
import logging
import socket
import threading
import time
from collections import Counter
from http.server import ThreadingHTTPServer
from types import TracebackType
from typing import Self

from ._config import DemoConfig
from ._handler import DemoRequestHandler
from ._judge import JudgeRecord, JudgeRequest
from ._plan import Planner
from ._tokens import completion_tokens_for, prompt_tokens_for, response_input_tokens_for

__all__ = [
    "DemoConfig",
    "DemoServer",
    "completion_tokens_for",
    "prompt_tokens_for",
    "response_input_tokens_for",
]

logger = logging.getLogger("llmtel.demo")


class DemoHTTPServer(ThreadingHTTPServer):
    """A threading HTTP server that can drop every open connection when it stops."""

    daemon_threads = True
    request_queue_size = 128

    def __init__(self, address: tuple[str, int], config: DemoConfig) -> None:
        if ":" in address[0]:
            self.address_family = socket.AF_INET6
        super().__init__(address, DemoRequestHandler)
        self.planner = Planner(config)
        self.stopping = threading.Event()
        self._lock = threading.Lock()
        self._connections: dict[threading.Thread, socket.socket] = {}
        self._counts: Counter[tuple[str, str]] = Counter()
        self._judged: list[JudgeRecord] = []
        self._judge_arrivals = 0

    def process_request(
        self, request: socket.socket | tuple[bytes, socket.socket], client_address: object
    ) -> None:
        """Serve the connection in a tracked daemon thread."""
        assert isinstance(request, socket.socket)
        thread = threading.Thread(
            target=self._serve_connection,
            args=(request, client_address),
            name="llmtel-demo-connection",
            daemon=True,
        )
        with self._lock:
            self._connections[thread] = request
        thread.start()

    def _serve_connection(self, request: socket.socket, client_address: object) -> None:
        try:
            self.finish_request(request, client_address)
        except Exception:  # a broken connection must not kill the server
            self.handle_error(request, client_address)
        finally:
            self.shutdown_request(request)
            with self._lock:
                self._connections.pop(threading.current_thread(), None)

    def handle_error(
        self, request: socket.socket | tuple[bytes, socket.socket], client_address: object
    ) -> None:
        """Log a connection's failure at DEBUG (clients disconnect; that is not news)."""
        logger.debug("connection from %s failed", client_address, exc_info=True)

    def record(self, path: str, outcome: str) -> None:
        """Count one request to ``path`` by outcome (``"200"``, ``"429"``, ``"timeout"``...)."""
        with self._lock:
            self._counts[(path, outcome)] += 1

    def counts(self) -> dict[tuple[str, str], int]:
        """A snapshot of the request counts by (path, outcome)."""
        with self._lock:
            return dict(self._counts)

    def judge_arrived(self) -> None:
        """Count one judge request as it arrives (before its latency and verdict)."""
        with self._lock:
            self._judge_arrivals += 1

    def judge_arrivals(self) -> int:
        """How many judge requests have arrived so far."""
        with self._lock:
            return self._judge_arrivals

    def record_judge(self, request: JudgeRequest, verdict: str, *, delivered: bool) -> None:
        """Remember one verdict the demo judge decided (and whether the client got it)."""
        with self._lock:
            self._judged.append(JudgeRecord(request.name, verdict, request.subject, delivered))

    def judged(self) -> list[JudgeRecord]:
        """A snapshot of the verdicts decided so far, oldest first."""
        with self._lock:
            return list(self._judged)

    def drop_connections(self, timeout: float) -> None:
        """Wake sleeping handlers, cut every open connection and wait for their threads."""
        self.stopping.set()
        with self._lock:
            connections = list(self._connections.items())
        for _, sock in connections:
            with contextlib.suppress(OSError):
                sock.shutdown(socket.SHUT_RDWR)
        deadline = time.monotonic() + timeout
        for thread, _ in connections:
            thread.join(max(0.0, deadline - time.monotonic()))


class DemoServer:
    """An OpenAI-compatible server on a background thread; a context manager.

    Point the openai SDK at ``base_url``. Requests follow ``config`` unless they carry
    ``x-llmtel-demo-*`` headers. ``stop()`` returns promptly, even while requests sleep.

    Example:
        >>> from openai import OpenAI
        >>> with DemoServer() as server:
        ...     client = OpenAI(base_url=server.base_url, api_key="demo", max_retries=0)
        ...     reply = client.chat.completions.create(
        ...         model="gpt-4o-mini", messages=[{"role": "user", "content": "Say hello"}]
        ...     )
        ...     client.close()
        >>> reply.usage.prompt_tokens, reply.model
        (5, 'gpt-4o-mini')
    """

    def __init__(
        self, host: str = "127.0.0.1", port: int = 0, config: DemoConfig | None = None
    ) -> None:
        self.host = host
        self.config = config or DemoConfig()
        self._requested_port = port
        self._httpd: DemoHTTPServer | None = None
        self._thread: threading.Thread | None = None

    @property
    def port(self) -> int:
        """The bound port (the real one when constructed with ``port=0``)."""
        return self._running().server_address[1]

    @property
    def url(self) -> str:
        """The server's root URL, e.g. ``http://127.0.0.1:8400``."""
        host = self.host
        if host in ("", "0.0.0.0"):  # noqa: S104 - the wildcard is reached on loopback
            host = "127.0.0.1"
        elif host == "::":
            host = "::1"
        if ":" in host:
            host = f"[{host}]"
        return f"http://{host}:{self.port}"

    @property
    def base_url(self) -> str:
        """The OpenAI ``base_url``, e.g. ``http://127.0.0.1:8400/v1``."""
        return f"{self.url}/v1"

    def counts(self) -> dict[tuple[str, str], int]:
        """Requests served so far by (path, outcome), e.g. ``("/v1/chat/completions", "429")``.

        Outcomes are the status code as a string, or ``"timeout"`` for a hung request.
        Requests rejected before routing (bad JSON, unknown paths) are not counted.
        """
        return self._running().counts()

    def judge_records(self) -> list[JudgeRecord]:
        """Verdicts given as a judge (structured-output requests), oldest first.

        Requests with the ``x-llmtel-demo-judge`` header and a JSON schema get a verdict.
        Each says the rubric (the JSON schema's name), the verdict, a digest of the judged
        text, and whether the answer was written: a client that closed its connection
        before (a killed worker) does not get it, and it is recorded as not delivered.
        See ``llmtel.demo._judge`` for how verdicts are decided.

        Example:
            >>> with DemoServer() as server:
            ...     records = server.judge_records()
            >>> records
            []
        """
        return self._running().judged()

    def judge_requests_received(self) -> int:
        """Judge requests received so far, answered or not: one in flight counts.

        A request counts as it arrives; it gets its ``judge_records()`` entry once its
        latency has passed (unless the server's settings fail it). A test that must kill
        a judge's client mid-request waits for this count to move.

        Example:
            >>> with DemoServer() as server:
            ...     server.judge_requests_received()
            0
        """
        return self._running().judge_arrivals()

    def start(self) -> Self:
        """Bind the socket and serve on a daemon thread; return ``self``."""
        if self._httpd is not None:
            raise RuntimeError("DemoServer already started")
        httpd = DemoHTTPServer((self.host, self._requested_port), self.config)
        self._httpd = httpd
        self._thread = threading.Thread(
            target=httpd.serve_forever,
            kwargs={"poll_interval": 0.05},
            name="llmtel-demo-server",
            daemon=True,
        )
        self._thread.start()
        logger.info("demo server listening on %s", self.base_url)
        return self

    def stop(self, timeout: float = 5.0) -> None:
        """Stop serving: interrupt sleeping requests, close connections, free the port."""
        httpd, thread = self._httpd, self._thread
        if httpd is None or thread is None:
            return
        httpd.stopping.set()
        httpd.shutdown()
        thread.join(timeout)
        httpd.drop_connections(timeout)
        httpd.server_close()
        self._thread = None

    def __enter__(self) -> Self:
        return self.start()

    def __exit__(
        self,
        exc_type: type[BaseException] | None,
        exc: BaseException | None,
        tb: TracebackType | None,
    ) -> None:
        self.stop()

    def _running(self) -> DemoHTTPServer:
        if self._httpd is None:
            raise RuntimeError("DemoServer is not started; call start() or use it in a with block")
        return self._httpd
