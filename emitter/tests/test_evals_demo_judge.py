"""The demo server as a judge: structured outputs with verdicts decided by markers."""

from __future__ import annotations

import hashlib
import time
from typing import Literal

import openai
import pydantic
import pytest
from pydantic import BaseModel

from llmtel.demo import DemoConfig
from llmtel.demo.server import DemoServer


class Verdict(BaseModel):
    """A pass/fail verdict, as the eval worker asks for it."""

    explanation: str
    verdict: Literal["pass", "fail", "not_applicable"]


class Score(BaseModel):
    """A 1-5 score with an applicability flag."""

    explanation: str
    applicable: bool
    score: Literal[1, 2, 3, 4, 5]


JUDGE = {"x-llmtel-demo-judge": "0"}


def ask(
    client: openai.OpenAI, text: str, model: type[BaseModel] = Verdict, share: str = "0"
) -> BaseModel:
    """Ask the demo judge (failing ``share`` of unmarked texts) for a verdict on ``text``."""
    completion = client.chat.completions.parse(
        model="gpt-4o-mini",
        messages=[{"role": "system", "content": "Judge."}, {"role": "user", "content": text}],
        response_format=model,
        extra_headers={"x-llmtel-demo-judge": share},
    )
    parsed = completion.choices[0].message.parsed
    assert parsed is not None
    return parsed


@pytest.mark.parametrize(
    ("text", "expected"),
    [
        ("a fine answer", "pass"),
        ("answer [demo-verdict:fail]", "fail"),
        ("answer [demo-verdict:na]", "not_applicable"),
        ("answer [demo-verdict:Verdict=fail]", "fail"),
        ("answer [demo-verdict:fail] [demo-verdict:Verdict=pass]", "pass"),
        ("answer [demo-verdict:other_rubric=fail]", "pass"),
        ("answer [demo-verdict:2]", "fail"),
        ("answer [demo-verdict:4]", "pass"),
    ],
)
def test_markers_decide_the_verdict(client: openai.OpenAI, text: str, expected: str) -> None:
    """Verify that a marker (for every rubric, or for the schema's name) sets the verdict."""
    verdict = ask(client, text)
    assert isinstance(verdict, Verdict)
    assert verdict.verdict == expected
    marker = {"not_applicable": "na"}.get(expected, expected)
    if "[demo-verdict:" in text and text.endswith(("2]", "4]")):
        marker = text[-2]
    assert verdict.explanation == (
        f"llmtel demo judge: {marker} for Verdict (decided by a marker or the fail share)."
    )


@pytest.mark.parametrize(
    ("text", "applicable", "score"),
    [
        ("fine", True, 5),
        ("bad [demo-verdict:fail]", True, 1),
        ("meh [demo-verdict:Score=3]", True, 3),
        ("[demo-verdict:na]", False, 1),
    ],
)
def test_scores_fill_an_integer_enum(
    client: openai.OpenAI, text: str, applicable: bool, score: int
) -> None:
    """Verify 1-5 schemas: pass is 5, fail is 1, a score marker is itself, na is not applicable."""
    answer = ask(client, text, Score)
    assert isinstance(answer, Score)
    assert (answer.applicable, answer.score) == (applicable, score)


def test_the_fail_share_fails_the_same_texts_every_time() -> None:
    """Verify that without markers a header-set share fails texts chosen by their hash."""
    texts = [f"answer number {i}" for i in range(40)]

    def hashed_fail(text: str) -> bool:
        digest = hashlib.sha256(f"Verdict\n{text}".encode()).digest()
        return int.from_bytes(digest[:4], "big") / 2**32 < 0.3

    expected = ["fail" if hashed_fail(t) else "pass" for t in texts]
    with (
        DemoServer() as server,
        openai.OpenAI(base_url=server.base_url, api_key="k", max_retries=0) as client,
    ):
        first = [ask(client, t, share="0.3").verdict for t in texts]  # type: ignore[attr-defined]
        second = [ask(client, t, share="0.3").verdict for t in texts]  # type: ignore[attr-defined]
    assert first == second == expected
    assert expected.count("fail") == 8  # of 40, at a share of 0.3


def test_a_bad_fail_share_header_is_a_bad_request(client: openai.OpenAI) -> None:
    """Verify that a fail share outside 0-1 is answered 400, naming the header."""
    with pytest.raises(openai.BadRequestError, match="x-llmtel-demo-judge: expected"):
        client.chat.completions.parse(
            model="gpt-4o-mini",
            messages=[{"role": "user", "content": "x"}],
            response_format=Verdict,
            extra_headers={"x-llmtel-demo-judge": "2"},
        )


def test_a_streamed_judge_answer_parses_too(client: openai.OpenAI) -> None:
    """Verify that the verdict JSON also arrives through a structured-output stream."""
    with client.chat.completions.stream(
        model="gpt-4o-mini",
        messages=[{"role": "user", "content": "x [demo-verdict:fail]"}],
        response_format=Verdict,
        extra_headers=JUDGE,
    ) as stream:
        final = stream.get_final_completion()
    parsed = final.choices[0].message.parsed
    assert parsed is not None
    assert parsed.verdict == "fail"


def test_the_server_records_each_verdict_and_whether_it_was_delivered() -> None:
    """Verify judge_records: delivered verdicts, and one whose client gave up first."""
    with DemoServer(config=DemoConfig(latency_ms_min=300, latency_ms_max=300)) as server:
        with openai.OpenAI(
            base_url=server.base_url, api_key="k", max_retries=0, default_headers=JUDGE
        ) as client:
            ask(client, "good")
            with pytest.raises(openai.APITimeoutError):
                client.chat.completions.parse(
                    model="gpt-4o-mini",
                    messages=[{"role": "user", "content": "late [demo-verdict:fail]"}],
                    response_format=Verdict,
                    timeout=0.1,
                )
        records = server.judge_records()
        deadline = time.monotonic() + 5
        while len(records) < 2 and time.monotonic() < deadline:  # the late one is still asleep
            time.sleep(0.05)
            records = server.judge_records()
        received = server.judge_requests_received()
    assert [(r.rubric, r.verdict, r.delivered) for r in records] == [
        ("Verdict", "pass", True),
        ("Verdict", "fail", False),
    ]
    assert records[0].subject == hashlib.sha256(b"good").hexdigest()[:16]
    assert received == 2


def test_without_the_judge_header_requests_are_answered_as_before(
    client: openai.OpenAI, server: DemoServer
) -> None:
    """Verify that schema requests without x-llmtel-demo-judge get lorem text, not a verdict."""
    before = len(server.judge_records())
    received = server.judge_requests_received()
    with pytest.raises(pydantic.ValidationError):
        client.chat.completions.parse(
            model="gpt-4o-mini",
            messages=[{"role": "user", "content": "Say hello [demo-verdict:fail]"}],
            response_format=Verdict,
        )
    reply = client.chat.completions.create(
        model="gpt-4o-mini",
        messages=[{"role": "user", "content": "Say hello"}],
        extra_headers=JUDGE,  # a judge header alone, without a schema: lorem text
    )
    assert reply.choices[0].message.content is not None
    assert not reply.choices[0].message.content.startswith("{")
    assert len(server.judge_records()) == before
    assert server.judge_requests_received() == received
