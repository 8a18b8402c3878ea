"""`llmtel.cost.usd`: genai-prices' bundled data, cache- and reasoning-aware, user price files."""

from __future__ import annotations

import asyncio
import logging
import threading
from decimal import Decimal
from pathlib import Path

import genai_prices.data_snapshot
import openai
import pytest

from llmtel._cost import PricesFileError, build_pricer, load_prices_file
from llmtel.demo.server import DemoServer
from llmtel.testing import Capture, capture

# Prices in genai-prices' bundled data, USD per million tokens.
GPT_4O_MINI = {"input": Decimal("0.15"), "cached": Decimal("0.075"), "output": Decimal("0.6")}
O4_MINI = {"input": Decimal("1.1"), "output": Decimal("4.4")}
EMBEDDING_3_SMALL = Decimal("0.02")
MILLION = 10**6

PRICES_YAML = """\
models:
  - model: My-Llama-70B
    input_mtok: 0.5
    cache_read_mtok: 0.1
    output_mtok: 1.5
  - pattern: "ft:gpt-4o-mini:.*"
    input_mtok: 0.3
    output_mtok: 1.2
  - model: gpt-4o-mini
    input_mtok: 0.1
    output_mtok: 0.4
"""


def _usd(amount: Decimal) -> float:
    return float(amount / MILLION)


def _span_attrs(cap: Capture) -> dict[str, object]:
    (span,) = cap.spans()
    return dict(span.attributes or {})


def _words(n: int) -> str:
    return " ".join(["word"] * n)


def test_cached_tokens_are_priced_at_the_cache_read_price(
    telemetry: Capture, client: openai.OpenAI
) -> None:
    """Verify case 4: 2006 in (1920 cached), 300 out = 86 x input + 1920 x cached + 300 x output."""
    client.chat.completions.create(
        model="gpt-4o-mini",
        messages=[{"role": "user", "content": _words(2003)}],  # 3 + 2003 = 2006 tokens
        extra_headers={
            "x-llmtel-demo-output-tokens": "300",
            "x-llmtel-demo-cached-tokens": "1920",
        },
    )
    attrs = _span_attrs(telemetry)
    assert attrs["gen_ai.usage.input_tokens"] == 2006
    assert attrs["gen_ai.usage.cache_read.input_tokens"] == 1920
    assert attrs["gen_ai.usage.output_tokens"] == 300
    expected = (
        86 * GPT_4O_MINI["input"] + 1920 * GPT_4O_MINI["cached"] + 300 * GPT_4O_MINI["output"]
    )
    assert expected == Decimal("336.9")
    assert attrs["llmtel.cost.usd"] == _usd(expected)
    (record,) = telemetry.logs()
    assert (record.log_record.attributes or {})["llmtel.cost.usd"] == _usd(expected)


def test_reasoning_tokens_are_priced_once_as_output(
    telemetry: Capture, client: openai.OpenAI
) -> None:
    """Verify case 5: 27 output tokens of which 17 reasoning cost 27 x the output price, once."""
    client.chat.completions.create(
        model="o4-mini",
        messages=[{"role": "user", "content": "think"}],  # 4 tokens
        extra_headers={
            "x-llmtel-demo-output-tokens": "27",
            "x-llmtel-demo-reasoning-tokens": "17",
        },
    )
    attrs = _span_attrs(telemetry)
    assert attrs["gen_ai.usage.output_tokens"] == 27
    assert attrs["gen_ai.usage.reasoning.output_tokens"] == 17
    assert attrs["llmtel.cost.usd"] == _usd(4 * O4_MINI["input"] + 27 * O4_MINI["output"])
    tokens = {
        (p.attributes or {})["gen_ai.token.type"]: p.sum
        for p in telemetry.histogram("gen_ai.client.token.usage")
    }
    assert tokens == {"input": 4, "output": 27}


def test_streamed_call_is_priced_from_the_usage_chunk(
    telemetry: Capture, client: openai.OpenAI
) -> None:
    """Verify that a stream with `include_usage` gets the cost of its final usage chunk."""
    chunks = list(
        client.chat.completions.create(
            model="gpt-4o-mini",
            messages=[{"role": "user", "content": "stream"}],  # 4 tokens
            stream=True,
            stream_options={"include_usage": True},
            extra_headers={"x-llmtel-demo-output-tokens": "12"},
        )
    )
    assert chunks[-1].usage is not None
    attrs = _span_attrs(telemetry)
    assert attrs["llmtel.cost.usd"] == _usd(4 * GPT_4O_MINI["input"] + 12 * GPT_4O_MINI["output"])


def test_embeddings_are_priced_by_input_tokens(telemetry: Capture, client: openai.OpenAI) -> None:
    """Verify that an embeddings call costs its input tokens at the model's input price."""
    client.embeddings.create(model="text-embedding-3-small", input=["one two", "three"])
    attrs = _span_attrs(telemetry)
    assert attrs["gen_ai.usage.input_tokens"] == 3
    assert attrs["llmtel.cost.usd"] == _usd(3 * EMBEDDING_3_SMALL)


def test_unknown_model_gets_no_cost_and_one_warning_per_model(
    telemetry: Capture, client: openai.OpenAI, caplog: pytest.LogCaptureFixture
) -> None:
    """Verify that an unpriced model has no cost attribute and warns exactly once per model."""
    caplog.set_level(logging.WARNING, logger="llmtel")
    for model in ("mystery-1", "mystery-1", "mystery-2", "mystery-1"):
        client.chat.completions.create(model=model, messages=[{"role": "user", "content": "hi"}])
    spans = telemetry.spans()
    assert len(spans) == 4
    for span in spans:
        attrs = span.attributes or {}
        assert "llmtel.cost.usd" not in attrs
        assert attrs["gen_ai.usage.input_tokens"] == 4
    warnings = [r.getMessage() for r in caplog.records if r.name == "llmtel"]
    assert len(warnings) == 2
    assert "'mystery-1'" in warnings[0]
    assert "'mystery-2'" in warnings[1]


def test_price_file_prices_unlisted_models_and_overrides_bundled_ones(
    client: openai.OpenAI, tmp_path: Path
) -> None:
    """Verify that price file entries (exact name, pattern) price calls and win over the bundle."""
    prices = tmp_path / "prices.yaml"
    prices.write_text(PRICES_YAML)
    with capture(prices_file=prices) as cap:
        for model, cached in (
            ("my-llama-70b", "1000"),
            ("ft:gpt-4o-mini:acme:1", "0"),
            ("gpt-4o-mini", "0"),
        ):
            client.chat.completions.create(
                model=model,
                messages=[{"role": "user", "content": _words(1997)}],  # 2000 tokens
                extra_headers={
                    "x-llmtel-demo-output-tokens": "100",
                    "x-llmtel-demo-cached-tokens": cached,
                },
            )
    costs = [(s.attributes or {})["llmtel.cost.usd"] for s in cap.spans()]
    assert costs == [
        _usd(1000 * Decimal("0.5") + 1000 * Decimal("0.1") + 100 * Decimal("1.5")),
        _usd(2000 * Decimal("0.3") + 100 * Decimal("1.2")),
        _usd(2000 * Decimal("0.1") + 100 * Decimal("0.4")),
    ]


def test_prices_file_comes_from_the_environment(
    tmp_path: Path, monkeypatch: pytest.MonkeyPatch
) -> None:
    """Verify that `LLMTEL_PRICES_FILE` names the price file when `init` gets none."""
    prices = tmp_path / "prices.yaml"
    prices.write_text(PRICES_YAML)
    monkeypatch.setenv("LLMTEL_PRICES_FILE", str(prices))
    pricer = build_pricer(None)
    from llmtel._cost import Tokens

    assert pricer.cost(("my-llama-70b",), Tokens(input=1000, output=0), None) == _usd(
        1000 * Decimal("0.5")
    )


@pytest.mark.parametrize(
    ("text", "message"),
    [
        ("models: {}", "expected a mapping with a 'models' list"),
        ("models:\n  - model: x\n    output_mtok: 1\n", "input_mtok is required"),
        (
            "models:\n  - model: x\n    pattern: y\n    input_mtok: 1\n    output_mtok: 1\n",
            "exactly one",
        ),
        ("models:\n  - model: x\n    input_mtok: cheap\n    output_mtok: 1\n", "must be a number"),
        (
            "models:\n  - model: x\n    input_mtok: 1\n    output_mtok: 1\n    extra: 2\n",
            "unknown keys",
        ),
        ("models: [", "cannot read price file"),
    ],
)
def test_bad_price_files_are_rejected_with_a_reason(
    text: str, message: str, tmp_path: Path
) -> None:
    """Verify that a malformed price file is refused with a message saying what is wrong."""
    prices = tmp_path / "prices.yaml"
    prices.write_text(text)
    with pytest.raises(PricesFileError, match=message):
        load_prices_file(prices)


def test_a_bad_price_file_is_logged_and_ignored(
    tmp_path: Path, client: openai.OpenAI, caplog: pytest.LogCaptureFixture
) -> None:
    """Verify that `init` with an unusable price file logs an error and prices from the bundle."""
    with capture(prices_file=tmp_path / "missing.yaml") as cap:
        client.chat.completions.create(
            model="gpt-4o-mini", messages=[{"role": "user", "content": "hi"}]
        )
    assert "llmtel.cost.usd" in _span_attrs(cap)
    errors = [r for r in caplog.records if r.name == "llmtel" and r.levelno == logging.ERROR]
    assert len(errors) == 1
    assert "using the bundled prices only" in errors[0].getMessage()


def test_prices_never_come_from_the_network(
    client: openai.OpenAI, monkeypatch: pytest.MonkeyPatch
) -> None:
    """Verify that no price refresh runs and a snapshot an app fetched does not change costs."""

    def no_fetch(*args: object, **kwargs: object) -> None:
        raise AssertionError("genai-prices tried to fetch prices")

    monkeypatch.setattr(genai_prices.update_prices.UpdatePrices, "fetch", no_fetch)
    bundled = genai_prices.data_snapshot.get_snapshot()
    fetched = genai_prices.data_snapshot.DataSnapshot(providers=[], from_auto_update=True)
    monkeypatch.setattr(genai_prices.data_snapshot, "_custom_snapshot", fetched)
    with capture() as cap:
        client.chat.completions.create(
            model="gpt-4o-mini",
            messages=[{"role": "user", "content": "hi"}],  # 4 tokens
            extra_headers={"x-llmtel-demo-output-tokens": "10"},
        )
    assert bundled is not fetched
    assert _span_attrs(cap)["llmtel.cost.usd"] == _usd(
        4 * GPT_4O_MINI["input"] + 10 * GPT_4O_MINI["output"]
    )
    assert not any(t.name == "genai_prices:update" for t in threading.enumerate())


def test_async_calls_are_priced(telemetry: Capture, server: DemoServer) -> None:
    """Verify that an async call gets the same exact cost as a sync one."""

    async def main() -> None:
        async with openai.AsyncOpenAI(
            base_url=server.base_url, api_key="test-key", max_retries=0
        ) as client:
            await client.chat.completions.create(
                model="gpt-4o-mini",
                messages=[{"role": "user", "content": "hi"}],
                extra_headers={"x-llmtel-demo-output-tokens": "10"},
            )

    asyncio.run(main())
    assert _span_attrs(telemetry)["llmtel.cost.usd"] == _usd(
        4 * GPT_4O_MINI["input"] + 10 * GPT_4O_MINI["output"]
    )
