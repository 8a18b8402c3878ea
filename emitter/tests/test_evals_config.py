"""The evals YAML file: the shipped default, a custom rubric in a few lines, clear errors."""

from __future__ import annotations

from pathlib import Path

import pytest

from llmtel.evals import (
    ConfigError,
    JudgeSettings,
    Rubric,
    default_config_text,
    load_config,
    parse_config,
)


def test_the_default_file_has_the_three_rubrics_of_the_issue() -> None:
    """Verify the shipped rubrics: grounded, cites_sources, appropriate_refusal, pass/fail."""
    config = load_config()
    assert [(r.name, r.scale, r.not_applicable) for r in config.rubrics] == [
        ("grounded", "pass_fail", True),
        ("cites_sources", "pass_fail", True),
        ("appropriate_refusal", "pass_fail", False),
    ]
    assert config.judge == JudgeSettings()
    assert config.outcomes == ("ok", "refusal")
    assert config.content_wait_s == 30.0


def test_a_custom_rubric_is_a_few_lines(tmp_path: Path) -> None:
    """Verify that a 1-5 rubric with a threshold and endpoints loads from a short file."""
    path = tmp_path / "rubrics.yaml"
    path.write_text(
        "judge:\n"
        "  model: gpt-4o\n"
        "  temperature:\n"
        "rubrics:\n"
        "  - name: tone\n"
        "    scale: 1-5\n"
        "    pass_threshold: 3\n"
        "    endpoints: [support-answer]\n"
        "    instructions: Is the answer polite and professional?\n"
    )
    config = load_config(path)
    assert config.judge.model == "gpt-4o"
    assert config.judge.temperature is None
    assert config.rubrics == (
        Rubric(
            "tone",
            "Is the answer polite and professional?",
            scale="1-5",
            pass_threshold=3,
            endpoints=("support-answer",),
        ),
    )
    assert [config.rubrics[0].label_for_score(s) for s in (2, 3)] == ["fail", "pass"]


def test_the_config_path_comes_from_the_environment(
    tmp_path: Path, monkeypatch: pytest.MonkeyPatch
) -> None:
    """Verify that LLMTEL_EVALS_CONFIG names the file when no path is given."""
    path = tmp_path / "mine.yaml"
    path.write_text("rubrics:\n  - name: short\n    instructions: Is it short?\n")
    monkeypatch.setenv("LLMTEL_EVALS_CONFIG", str(path))
    assert [r.name for r in load_config().rubrics] == ["short"]


@pytest.mark.parametrize(
    ("text", "message"),
    [
        ("rubrics: [", "not valid YAML"),
        ("rubrics: []", "rubrics: list at least one rubric"),
        ("judges: {}\nrubrics: []", r"unknown key\(s\) judges"),
        ("rubrics:\n  - name: Tone!\n    instructions: x", "rubric name 'Tone!'"),
        ("rubrics:\n  - name: tone\n    instructions: x\n    scale: 1-10", "scale must be"),
        ("rubrics:\n  - name: tone\n    instructions: x\n    thresold: 3", "thresold"),
        (
            "rubrics:\n  - name: tone\n    instructions: x\n    scale: 1-5\n    pass_threshold: 6",
            "pass_threshold must be between 1 and 5",
        ),
        (
            "rubrics:\n  - {name: a, instructions: x}\n  - {name: a, instructions: y}",
            "duplicate names a",
        ),
        ("judge: {max_attempts: 0}\nrubrics:\n  - {name: a, instructions: x}", "max_attempts"),
        ("judge: {timeout_s: soon}\nrubrics:\n  - {name: a, instructions: x}", "timeout_s"),
    ],
)
def test_mistakes_are_reported_with_what_is_wrong(text: str, message: str) -> None:
    """Verify that each kind of mistake raises ConfigError naming the key or value."""
    with pytest.raises(ConfigError, match=message):
        parse_config(text)


def test_a_missing_file_is_a_config_error(tmp_path: Path) -> None:
    """Verify that an unreadable path raises ConfigError, not OSError."""
    with pytest.raises(ConfigError, match="cannot read evals config"):
        load_config(tmp_path / "absent.yaml")


def test_the_rubric_version_follows_what_the_judge_is_told() -> None:
    """Verify that the version changes with instructions, scale or threshold, not with endpoints."""
    base = Rubric("tone", "Is it polite?", scale="1-5")
    assert base.version == Rubric("tone", "Is it polite?", scale="1-5", endpoints=("x",)).version
    assert base.version != Rubric("tone", "Is it kind?", scale="1-5").version
    assert base.version != Rubric("tone", "Is it polite?", scale="1-5", pass_threshold=3).version


def test_backoff_doubles_up_to_its_cap() -> None:
    """Verify the retry delays: initial, doubled each attempt, never above the cap."""
    settings = JudgeSettings(backoff_initial_s=0.5, backoff_max_s=3)
    assert [settings.backoff(n) for n in range(1, 6)] == [0.5, 1.0, 2.0, 3.0, 3.0]


def test_the_default_text_is_the_file_users_copy() -> None:
    """Verify that `llmtel evals rubrics` prints a file that parses to the default config."""
    assert parse_config(default_config_text()) == load_config()
