"""Global config: seeded failure shares reproduce, env variables parse, stop() is prompt."""

from __future__ import annotations

import random
import time
from concurrent.futures import ThreadPoolExecutor

import openai
import pytest
from openai import OpenAI
from openai.types.chat import ChatCompletionMessageParam

from llmtel.demo import DemoConfig, DemoServer, completion_tokens_for, prompt_tokens_for

MESSAGES: list[ChatCompletionMessageParam] = [{"role": "user", "content": "Say hello"}]
SHARES = DemoConfig(rate_429=0.2, rate_500=0.2, rate_timeout=0.1, timeout_s=0.02, seed=42)


def outcomes(
    config: DemoConfig, count: int, headers: dict[int, dict[str, str]] | None = None
) -> list[str]:
    """Send ``count`` sequential calls; return each one's outcome."""
    seen = []
    with (
        DemoServer(config=config) as server,
        OpenAI(base_url=server.base_url, api_key="demo", max_retries=0, timeout=10) as client,
    ):
        for i in range(count):
            try:
                reply = client.chat.completions.create(
                    model="gpt-4o", messages=MESSAGES, extra_headers=(headers or {}).get(i)
                )
                seen.append(f"ok:{reply.usage.completion_tokens if reply.usage else None}")
            except openai.APIStatusError as exc:
                seen.append(str(exc.status_code))
    return seen


def expected(config: DemoConfig, count: int) -> list[str]:
    """The documented decision rule: three draws per request, failure first."""
    rng = random.Random(config.seed)
    result = []
    for _ in range(count):
        failure, _latency, output = rng.random(), rng.random(), rng.random()
        span = config.output_tokens_max - config.output_tokens_min + 1
        if config.vary:
            tokens = config.output_tokens_min + int(output * span)
        else:
            tokens = completion_tokens_for(prompt_tokens_for(MESSAGES))
        if failure < config.rate_429:
            result.append("429")
        elif failure < config.rate_429 + config.rate_500:
            result.append("500")
        elif failure < config.rate_429 + config.rate_500 + config.rate_timeout:
            result.append("504")
        else:
            result.append(f"ok:{tokens}")
    return result


def test_seeded_shares_reproduce_exactly() -> None:
    """Verify that the same seed gives the same sequence of outcomes, as documented."""
    first = outcomes(SHARES, 40)
    assert first == outcomes(SHARES, 40)
    assert first == expected(SHARES, 40)
    assert {"429", "500", "504"} <= set(first)
    assert any(o.startswith("ok") for o in first)


def test_seeded_vary_draws_output_tokens_in_range() -> None:
    """Verify that vary draws reproducible output sizes inside the configured range."""
    config = DemoConfig(vary=True, output_tokens_min=3, output_tokens_max=9, seed=7)
    first = outcomes(config, 20)
    assert first == outcomes(config, 20) == expected(config, 20)
    sizes = {int(o.removeprefix("ok:")) for o in first}
    assert sizes <= set(range(3, 10))
    assert len(sizes) > 1


def test_directives_do_not_shift_later_decisions() -> None:
    """Verify that a request's directive headers leave the other requests' decisions alone."""
    plain = outcomes(SHARES, 20)
    headers = {i: {"x-llmtel-demo-output-tokens": "2"} for i in range(0, 20, 3)}
    mixed = outcomes(SHARES, 20, headers)
    for i, (a, b) in enumerate(zip(plain, mixed, strict=True)):
        if i not in headers:
            assert a == b
        elif a.startswith("ok"):
            assert b == "ok:2"


def test_stop_is_prompt_while_a_request_hangs() -> None:
    """Verify that stop() returns promptly while a timeout request sleeps, and frees the client."""
    server = DemoServer(config=DemoConfig(timeout_s=60)).start()
    client = OpenAI(base_url=server.base_url, api_key="demo", max_retries=0, timeout=60)
    with ThreadPoolExecutor(1) as pool:
        call = pool.submit(
            lambda: client.chat.completions.create(
                model="gpt-4o", messages=MESSAGES, extra_headers={"x-llmtel-demo-fail": "timeout"}
            )
        )
        deadline = time.monotonic() + 10
        while not server.counts() and time.monotonic() < deadline:
            time.sleep(0.01)
        assert server.counts() == {("/v1/chat/completions", "timeout"): 1}
        started = time.monotonic()
        server.stop()
        assert time.monotonic() - started < 3
        assert isinstance(call.exception(timeout=10), openai.APIConnectionError)
    client.close()


def test_stop_twice_and_context_exit_are_harmless() -> None:
    """Verify that stop() is idempotent."""
    with DemoServer() as server:
        server.stop()
    server.stop()


def test_env_variables_override_the_base_config() -> None:
    """Verify that LLMTEL_DEMO_* variables parse into the config."""
    config = DemoConfig.from_env(
        {
            "LLMTEL_DEMO_RATE_429": "0.1",
            "LLMTEL_DEMO_RATE_500": "0.05",
            "LLMTEL_DEMO_RATE_TIMEOUT": "0.01",
            "LLMTEL_DEMO_LATENCY_MS": "200:1500",
            "LLMTEL_DEMO_OUTPUT_TOKENS": "5",
            "LLMTEL_DEMO_VARY": "yes",
            "LLMTEL_DEMO_SEED": "9",
            "LLMTEL_DEMO_TIMEOUT_S": "2.5",
            "LLMTEL_DEMO_CHUNK_DELAY_MS": "15",
        },
        base=DemoConfig(rate_500=0.5),
    )
    assert config == DemoConfig(
        rate_429=0.1,
        rate_500=0.05,
        rate_timeout=0.01,
        latency_ms_min=200,
        latency_ms_max=1500,
        output_tokens_min=5,
        output_tokens_max=5,
        vary=True,
        seed=9,
        timeout_s=2.5,
        chunk_delay_ms=15,
    )
    assert DemoConfig.from_env({}, base=DemoConfig(seed=1)) == DemoConfig(seed=1)


@pytest.mark.parametrize(
    ("name", "value"),
    [
        ("LLMTEL_DEMO_RATE_429", "lots"),
        ("LLMTEL_DEMO_LATENCY_MS", "9:1"),
        ("LLMTEL_DEMO_VARY", "?"),
    ],
)
def test_malformed_env_variable_is_named(name: str, value: str) -> None:
    """Verify that a malformed variable raises an error naming it."""
    with pytest.raises(ValueError, match=name):
        DemoConfig.from_env({name: value})


@pytest.mark.parametrize(
    "kwargs",
    [
        {"rate_429": 1.5},
        {"rate_429": 0.6, "rate_500": 0.6},
        {"latency_ms_min": 9, "latency_ms_max": 1},
    ],
)
def test_impossible_config_is_rejected(kwargs: dict[str, float]) -> None:
    """Verify that shares outside [0, 1], summing over 1, or inverted ranges are rejected."""
    with pytest.raises(ValueError, match="must"):
        DemoConfig(**kwargs)  # type: ignore[arg-type]
