"""``STRIPE_SESSIONS_OTEL_ENABLED`` read as OpenTelemetry reads its boolean variables.

Only ``true`` (any case) is true; unset or empty keeps the default (on); ``false`` is
off; any other value (``disabled``...) was silently on: now off, with one warning
naming the variable and the accepted values.
"""

from __future__ import annotations

import logging
import uuid

import pytest

import stripe_sessions as ss
from stripe_sessions.testing import FakeStripe

FLAG = "STRIPE_SESSIONS_OTEL_ENABLED"


def _tracing(fake: FakeStripe) -> bool:
    return ss.AsyncClient(api_key=fake.api_key, base_url=fake.url).config.tracing


@pytest.mark.parametrize("value", ["", "true", "TRUE", " True "])
def test_true_or_unset_is_on(
    fake: FakeStripe, monkeypatch: pytest.MonkeyPatch, caplog: pytest.LogCaptureFixture, value: str
) -> None:
    monkeypatch.setenv(FLAG, value)
    assert _tracing(fake) is True
    assert not [r for r in caplog.records if FLAG in r.getMessage()]


@pytest.mark.parametrize("value", ["false", "FALSE", "0", "no", "off"])
def test_false_is_off_without_a_word(
    fake: FakeStripe, monkeypatch: pytest.MonkeyPatch, caplog: pytest.LogCaptureFixture, value: str
) -> None:
    monkeypatch.setenv(FLAG, value)
    assert _tracing(fake) is False
    assert not [r for r in caplog.records if FLAG in r.getMessage()]


@pytest.mark.parametrize("word", ["disabled", "n", "none", "1", "enabled"])
def test_an_unknown_value_is_off_with_one_warning(
    fake: FakeStripe, monkeypatch: pytest.MonkeyPatch, caplog: pytest.LogCaptureFixture, word: str
) -> None:
    value = f"{word}-{uuid.uuid4().hex[:8]}" if word != "disabled" else word
    monkeypatch.setenv(FLAG, value)
    caplog.set_level(logging.WARNING, "stripe_sessions")
    first = _tracing(fake)
    second = _tracing(fake)  # the same value again: no second warning
    assert first is False and second is False
    said = [r.getMessage() for r in caplog.records if FLAG in r.getMessage()]
    if word == "disabled" and not said:  # warned already in this process (a rerun)
        return
    assert len(said) == 1, said
    assert value in said[0] and "true" in said[0] and "false" in said[0], said[0]
