"""Fresh one-time builders for the pin tests, so mutation testing measures them.

The encoder works out each parameter class's field specs on first use (``encode._FIELDS``,
``encode._NAMES``) and the converter is built once (``converter._hooks``). mutmut forks
every mutant from a process that has already run the tests, so without this each mutant
would reuse tables built by the original code and a mutant inside ``_kind``, ``_fields``
or ``build_converter`` would never run ("survived" though no test could see it). The pin
tests call :func:`rebuild` before each test: for the test's duration the module has fresh,
empty tables and a fresh converter cache, built again on first use under the mutant; the
process's own are put back afterwards (``get_converter()`` stays the one other tests hold:
``structure_session`` reads components lazily only with that one). The library itself is
unchanged (tables still built once per process); this costs a few milliseconds per test.
"""

from __future__ import annotations

import functools

import pytest

from stripe_sessions._wire import converter, encode


def rebuild(monkeypatch: pytest.MonkeyPatch) -> None:
    """Give the test fresh field tables and converter; the originals return after it."""
    monkeypatch.setattr(encode, "_FIELDS", type(encode._FIELDS)())
    monkeypatch.setattr(encode, "_NAMES", type(encode._NAMES)())
    monkeypatch.setattr(converter, "_hooks", functools.cache(converter._hooks.__wrapped__))
