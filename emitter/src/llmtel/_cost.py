"""The cost of a call in USD: the user's price file first, then genai-prices' bundled data.

Prices come from data shipped inside the ``genai-prices`` package, read once into a
snapshot of llmtel's own. llmtel never starts genai-prices' remote updater and never
reads a snapshot that an app's updater may have installed, so a cost never depends on
the network (and never waits for it).

Token counts follow OpenAI and the GenAI semantic conventions: input tokens include
the cached ones, output tokens include the reasoning ones. genai-prices prices the
cached share at the cache-read price and the rest at the input price, and prices the
output tokens once; reasoning tokens are billed as output and are not passed again.

A model that neither source knows gets no cost (never a guessed one) and one warning
per model name on the ``llmtel`` logger.
"""

from __future__ import annotations

import logging
import os
import re
import threading
from collections.abc import Mapping
from dataclasses import dataclass
from decimal import Decimal, InvalidOperation
from functools import cache
from pathlib import Path
from typing import TYPE_CHECKING

import yaml

if TYPE_CHECKING:
    from genai_prices.data_snapshot import DataSnapshot
    from genai_prices.types import ModelPrice

_log = logging.getLogger("llmtel")

PRICES_FILE_ENV = "LLMTEL_PRICES_FILE"

# Price keys a price file may set, in USD per million tokens (genai-prices' names).
PRICE_KEYS = ("input_mtok", "cache_read_mtok", "cache_write_mtok", "output_mtok")

_MAX_WARNED_MODELS = 1000  # a model name made from user input must not grow this forever
_OPENAI = "openai"


class PricesFileError(ValueError):
    """A price file that cannot be read or does not have the documented shape."""


@dataclass(frozen=True, slots=True)
class Tokens:
    """The token counts of one call, as reported by the API."""

    input: int
    output: int = 0
    cache_read: int | None = None
    cache_write: int | None = None


@dataclass(frozen=True, slots=True)
class UserPrice:
    """One entry of a price file: a model name or pattern and its prices per token kind."""

    model: str | None
    pattern: re.Pattern[str] | None
    prices: Mapping[str, Decimal]

    def matches(self, model: str) -> bool:
        """Return True if this entry prices ``model``."""
        if self.model is not None:
            return self.model == model.lower()
        return self.pattern is not None and self.pattern.fullmatch(model) is not None


def load_prices_file(path: str | os.PathLike[str]) -> tuple[UserPrice, ...]:
    """Read a YAML price file.

    The file holds ``models:``, a list of entries, each with ``model:`` (an exact
    name, case-insensitive) or ``pattern:`` (a regular expression matched against the
    whole name) and prices in USD per million tokens: ``input_mtok`` and
    ``output_mtok`` (required), ``cache_read_mtok`` and ``cache_write_mtok`` (optional;
    without them cached tokens cost the input price). The first matching entry wins.

    Raises:
        PricesFileError: the file is missing, not YAML, or not of that shape.
    """
    try:
        data = yaml.safe_load(Path(path).read_text(encoding="utf-8"))
    except (OSError, UnicodeDecodeError, yaml.YAMLError) as exc:
        raise PricesFileError(f"cannot read price file {path}: {exc}") from exc
    if not isinstance(data, Mapping) or not isinstance(data.get("models"), list):
        raise PricesFileError(f"{path}: expected a mapping with a 'models' list")
    entries: list[UserPrice] = []
    for number, raw in enumerate(data["models"], start=1):
        where = f"{path}: models[{number}]"
        if not isinstance(raw, Mapping):
            raise PricesFileError(f"{where}: expected a mapping")
        unknown = set(raw) - {"model", "pattern", *PRICE_KEYS}
        if unknown:
            raise PricesFileError(f"{where}: unknown keys {sorted(map(str, unknown))}")
        model, pattern = raw.get("model"), raw.get("pattern")
        if (model is None) == (pattern is None):
            raise PricesFileError(f"{where}: set exactly one of 'model' and 'pattern'")
        compiled: re.Pattern[str] | None = None
        if pattern is not None:
            try:
                compiled = re.compile(str(pattern))
            except re.error as exc:
                raise PricesFileError(f"{where}: bad pattern: {exc}") from exc
        prices: dict[str, Decimal] = {}
        for key in PRICE_KEYS:
            if key not in raw:
                continue
            value = raw[key]
            try:
                if isinstance(value, bool):
                    raise InvalidOperation
                price = Decimal(str(value))
            except InvalidOperation as exc:
                raise PricesFileError(f"{where}: {key} must be a number") from exc
            if not price.is_finite() or price < 0:
                raise PricesFileError(f"{where}: {key} must be a non-negative number")
            prices[key] = price
        for key in ("input_mtok", "output_mtok"):
            if key not in prices:
                raise PricesFileError(f"{where}: {key} is required")
        entries.append(
            UserPrice(str(model).lower() if model is not None else None, compiled, prices)
        )
    return tuple(entries)


@cache
def _bundled_snapshot() -> DataSnapshot:
    # A snapshot of the data shipped in the package, separate from genai-prices' global
    # one: UpdatePrices (a network fetch, opt-in) replaces only the global snapshot.
    from genai_prices.data import providers
    from genai_prices.data_snapshot import DataSnapshot

    return DataSnapshot(providers=providers, from_auto_update=False)


class Pricer:
    """Prices calls: the user's entries first, then genai-prices' bundled data."""

    def __init__(self, user_prices: tuple[UserPrice, ...] = ()) -> None:
        self._user = user_prices
        self._lock = threading.Lock()
        self._warned: set[str] = set()
        self._user_models: dict[str, ModelPrice | None] = {}

    def preload(self) -> None:
        """Load the bundled price data now (a second or so), so no call waits for it."""
        _bundled_snapshot()

    def cost(
        self, models: tuple[str | None, ...], tokens: Tokens, base_url: str | None
    ) -> float | None:
        """Return the USD cost of ``tokens``, or None if no model name in ``models`` is priced.

        ``models`` is tried in order (the response model, then the request model). The
        provider is the one genai-prices knows for ``base_url``; any other URL (a
        proxy, a local server) is taken to serve OpenAI's models.
        """
        from genai_prices import Usage

        names = [m for m in models if m]
        if not names:
            return None
        usage = Usage(
            input_tokens=tokens.input,
            output_tokens=tokens.output,
            cache_read_tokens=tokens.cache_read,
            cache_write_tokens=tokens.cache_write,
        )
        for name in names:
            price = self._user_price(name)
            if price is not None:
                return float(price.calc_price(usage)["total_price"])
        snapshot = _bundled_snapshot()
        provider_id, provider_url = _provider_for(base_url)
        for name in names:
            try:
                calculation = snapshot.calc(usage, name, provider_id, provider_url, None)
            except LookupError:
                continue
            return float(calculation.total_price)
        self._warn_unknown(names[0])
        return None

    def _user_price(self, model: str) -> ModelPrice | None:
        if not self._user:
            return None
        with self._lock:
            if model in self._user_models:
                return self._user_models[model]
        from genai_prices.types import ModelPrice

        found: ModelPrice | None = None
        for entry in self._user:
            if entry.matches(model):
                found = ModelPrice(**entry.prices)
                break
        with self._lock:
            if len(self._user_models) < _MAX_WARNED_MODELS:
                self._user_models[model] = found
        return found

    def _warn_unknown(self, model: str) -> None:
        with self._lock:
            if model in self._warned or len(self._warned) >= _MAX_WARNED_MODELS:
                return
            self._warned.add(model)
        _log.warning(
            "llmtel: no price known for model %r, so its calls get no llmtel.cost.usd; "
            "add it to a price file (LLMTEL_PRICES_FILE or init(prices_file=...))",
            model,
        )


@cache
def _provider_for(base_url: str | None) -> tuple[str | None, str | None]:
    """Return (provider_id, provider_api_url) for genai-prices."""
    if base_url is None:
        return _OPENAI, None
    try:
        _bundled_snapshot().find_provider(None, None, base_url)
    except LookupError:
        return _OPENAI, None
    return None, base_url


def build_pricer(prices_file: str | os.PathLike[str] | None) -> Pricer:
    """Return a pricer with the price file (argument, else ``LLMTEL_PRICES_FILE``), if any.

    A file that cannot be used is logged as an error and ignored: calls are then priced
    from the bundled data only.
    """
    path = prices_file if prices_file is not None else os.environ.get(PRICES_FILE_ENV) or None
    entries: tuple[UserPrice, ...] = ()
    if path is not None:
        try:
            entries = load_prices_file(path)
        except PricesFileError as exc:
            _log.error("llmtel: %s; using the bundled prices only", exc)
    return Pricer(entries)
