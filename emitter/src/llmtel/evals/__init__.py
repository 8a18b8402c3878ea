"""Production evals: an LLM judges a sample of real calls; pass rates go to Prometheus.

The collector copies the call and content records of a deterministic share of traces
into its eval queue. ``llmtel evals run`` (or ``once``) reads that queue, asks a judge
model for a bounded verdict per call and rubric through the OpenAI SDK's structured
outputs, and sends every verdict back over OTLP: a ``gen_ai.evaluation.result`` log
record on the judged call's trace, and the ``llmtel_eval_results_total`` counter by
rubric, label, model and prompt version. Rubrics live in a YAML file
(``llmtel evals rubrics`` prints the default). ``export`` and ``agreement`` measure how
far the judge agrees with people (Cohen's kappa per rubric).

Example:
    >>> from llmtel.evals import load_config
    >>> config = load_config()  # the shipped rubrics.yaml, or $LLMTEL_EVALS_CONFIG
    >>> [rubric.name for rubric in config.rubrics]
    ['grounded', 'cites_sources', 'appropriate_refusal']
"""

from ._calibration import Agreement, agreement, export_sample
from ._config import (
    ConfigError,
    EvalConfig,
    JudgeSettings,
    Rubric,
    default_config_text,
    load_config,
    parse_config,
)
from ._judge import Judge, JudgeFatal, JudgeUnavailable, Subject, Verdict
from ._kappa import cohen_kappa, weighted_kappa
from ._store import Store
from ._telemetry import EvalTelemetry
from ._worker import Summary, Worker

__all__ = [
    "Agreement",
    "ConfigError",
    "EvalConfig",
    "EvalTelemetry",
    "Judge",
    "JudgeFatal",
    "JudgeSettings",
    "JudgeUnavailable",
    "Rubric",
    "Store",
    "Subject",
    "Summary",
    "Verdict",
    "Worker",
    "agreement",
    "cohen_kappa",
    "default_config_text",
    "export_sample",
    "load_config",
    "parse_config",
    "weighted_kappa",
]
