"""Simulated LLM traffic: chat completions through the real openai SDK, counted by outcome.

``run_traffic`` sends calls at a fixed rate for a fixed time to any OpenAI-compatible
endpoint (the demo server or the real API), never raises on API errors, and returns a
``TrafficSummary``. Each call belongs to a simulated user, session and conversation: their
ids go to ``llmtel.context`` around the call, and the user id into the request's
``safety_identifier``.
"""

from __future__ import annotations

import random
import threading
import time
from collections.abc import Callable
from concurrent.futures import ThreadPoolExecutor
from dataclasses import dataclass, field

from openai import OpenAI, omit

import llmtel
from llmtel._call import classify_error

from ._prompts import PROMPTS, Prompt
from ._summary import OK, TrafficSummary


@dataclass(frozen=True)
class TrafficOptions:
    """What to send, where, how fast and for how long.

    Attributes:
        base_url: OpenAI-compatible base URL; None means the SDK's default (the real API).
        api_key: Sent to the endpoint; never printed (excluded from ``repr``).
        duration_s: Sending stops at this time; in-flight calls get at most ``drain_s`` more.
        rate: Calls per second (scheduled, not closed-loop).
        models: Models to spread the calls over.
        timeout_s: Client timeout per call.
        stream_share: Share of calls made with ``stream=True`` (with a usage chunk).
        users: Number of simulated users.
        seed: Seed for the choice of model, prompt, user and streaming.
        max_in_flight: Calls allowed in flight at once (the rate drops when all are busy).
        progress_every_s: Seconds between progress lines.
        drain_s: Grace after ``duration_s`` for in-flight calls; later ones time out.

    Example:
        >>> TrafficOptions(base_url="http://127.0.0.1:8400/v1", duration_s=5, rate=10).rate
        10
    """

    base_url: str | None = None
    api_key: str = field(default="demo", repr=False)
    duration_s: float = 60.0
    rate: float = 2.0
    models: tuple[str, ...] = ("gpt-4o-mini", "gpt-4o")
    timeout_s: float = 10.0
    stream_share: float = 0.25
    users: int = 8
    seed: int | None = None
    max_in_flight: int = 32
    progress_every_s: float = 10.0
    drain_s: float = 2.0

    def __post_init__(self) -> None:
        if self.duration_s <= 0 or self.rate <= 0 or self.timeout_s <= 0:
            raise ValueError("duration_s, rate and timeout_s must be positive")
        if not self.models or not all(self.models):
            raise ValueError("models must name at least one model")
        if not 0.0 <= self.stream_share <= 1.0:
            raise ValueError("stream_share must be between 0 and 1")
        if self.users < 1 or self.max_in_flight < 1:
            raise ValueError("users and max_in_flight must be at least 1")


@dataclass(frozen=True)
class _Call:
    model: str
    prompt: Prompt
    stream: bool
    user_id: str
    session_id: str
    conversation_id: str


class _Users:
    """Simulated users: one session each per run, conversations of 1-4 turns."""

    def __init__(self, rng: random.Random, count: int) -> None:
        self._rng = rng
        self._ids = [f"user-{i + 1:03d}" for i in range(count)]
        self._sessions = [f"sess-{rng.getrandbits(32):08x}" for _ in range(count)]
        self._conversations = [""] * count
        self._turns_left = [0] * count

    def pick(self) -> tuple[str, str, str]:
        """Return (user id, session id, conversation id) for the next call."""
        i = self._rng.randrange(len(self._ids))
        if self._turns_left[i] == 0:
            self._conversations[i] = f"conv-{self._rng.getrandbits(48):012x}"
            self._turns_left[i] = self._rng.randint(1, 4)
        self._turns_left[i] -= 1
        return self._ids[i], self._sessions[i], self._conversations[i]


class _Run:
    """One traffic run's shared state: the client, the counts and the in-flight slots."""

    def __init__(self, options: TrafficOptions, report: Callable[[str], None]) -> None:
        self.options = options
        self.report = report
        self.client = OpenAI(
            base_url=options.base_url,
            api_key=options.api_key,
            max_retries=0,
            timeout=options.timeout_s,
        )
        self.summary = TrafficSummary()
        self.lock = threading.Lock()
        self.slots = threading.BoundedSemaphore(options.max_in_flight)
        self.started = time.monotonic()
        self.deadline = self.started + options.duration_s
        self.sent = 0

    def send(self, call: _Call) -> None:
        """Make one call in a worker thread and count its outcome; never raises."""
        input_tokens = output_tokens = 0
        try:
            with llmtel.context(
                user_id=call.user_id,
                session_id=call.session_id,
                conversation_id=call.conversation_id,
            ):
                input_tokens, output_tokens = self._chat(call)
            outcome = OK
        except Exception as exc:  # every failure is an outcome to count, never a crash
            # The emitter's vocabulary, so the table matches the llmtel_outcome label.
            outcome = classify_error(exc)
        finally:
            self.slots.release()
        with self.lock:
            self.summary.record(call.model, outcome, input_tokens, output_tokens)

    def _chat(self, call: _Call) -> tuple[int, int]:
        remaining = self.deadline + self.options.drain_s - time.monotonic()
        timeout = min(self.options.timeout_s, max(remaining, 0.1))
        cap = call.prompt.max_completion_tokens
        completions = self.client.chat.completions
        if not call.stream:
            usage = completions.create(
                model=call.model,
                messages=call.prompt.messages(),
                safety_identifier=call.user_id,
                max_completion_tokens=omit if cap is None else cap,
                timeout=timeout,
            ).usage
        else:
            usage = None
            with completions.create(
                model=call.model,
                messages=call.prompt.messages(),
                safety_identifier=call.user_id,
                max_completion_tokens=omit if cap is None else cap,
                timeout=timeout,
                stream=True,
                stream_options={"include_usage": True},
            ) as stream:
                for chunk in stream:
                    usage = chunk.usage or usage
        if usage is None:
            return 0, 0
        return usage.prompt_tokens, usage.completion_tokens

    def progress(self) -> None:
        """Report the counts so far."""
        with self.lock:
            ok, done = self.summary.ok, self.summary.sent
        elapsed = time.monotonic() - self.started
        self.report(
            f"[{elapsed:4.0f}s] sent {self.sent}  ok {ok}  errors {done - ok}"
            f"  in flight {self.sent - done}"
        )


def run_traffic(
    options: TrafficOptions,
    *,
    report: Callable[[str], None] | None = None,
    stop: threading.Event | None = None,
) -> TrafficSummary:
    """Send chat completions at ``options.rate`` for ``options.duration_s``; count them.

    API errors are expected and counted by outcome; nothing is retried. Progress lines go
    to ``report`` every ``options.progress_every_s``. Setting ``stop`` (or Ctrl+C) ends the
    run early, marked ``interrupted``. Telemetry is whatever the process set up
    (``llmtel.init()``); this function only makes the calls.

    Example:
        >>> from llmtel.demo import DemoServer
        >>> with DemoServer() as server:
        ...     summary = run_traffic(
        ...         TrafficOptions(base_url=server.base_url, duration_s=0.5, rate=10, seed=1)
        ...     )
        >>> summary.sent == summary.ok == 5
        True
    """
    stop = stop or threading.Event()
    rng = random.Random(options.seed)  # noqa: S311 - simulation, not security
    users = _Users(rng, options.users)
    run = _Run(options, report or (lambda _line: None))
    next_progress = run.started + options.progress_every_s
    try:
        with ThreadPoolExecutor(options.max_in_flight, "llmtel-traffic") as pool:
            try:
                while True:
                    now = time.monotonic()
                    due = run.started + run.sent / options.rate
                    if due >= run.deadline or now >= run.deadline:
                        break
                    if stop.is_set():
                        run.summary.interrupted = True
                        break
                    if now >= next_progress:
                        run.progress()
                        next_progress += options.progress_every_s
                    wake = min(due, next_progress)
                    if now < wake:
                        stop.wait(wake - now)
                        continue
                    if not run.slots.acquire(timeout=min(0.1, run.deadline - now)):
                        continue
                    user_id, session_id, conversation_id = users.pick()
                    call = _Call(
                        model=rng.choice(options.models),
                        prompt=rng.choice(PROMPTS),
                        stream=rng.random() < options.stream_share,
                        user_id=user_id,
                        session_id=session_id,
                        conversation_id=conversation_id,
                    )
                    run.sent += 1
                    pool.submit(run.send, call)
            except KeyboardInterrupt:
                run.summary.interrupted = True
    finally:
        run.client.close()
    run.summary.duration_s = time.monotonic() - run.started
    return run.summary
