"""Fresh one-time builders for the pin tests, so mutation testing measures them.

The encoder works out each parameter class's field specs on first use (``encode._FIELDS``,
``encode._NAMES``) and the converter is built once (``converter._hooks``). mutmut forks
every mutant from a process that has already run the tests, so without this each mutant
would reuse tables built by the original code and a mutant inside ``_kind``, ``_fields``
or ``build_converter`` would never run ("survived" though no test could see it). The pin
tests call :func:`rebuild` before each test: the next create or answer builds the tables
again, under the mutant. The library itself is unchanged (tables still built once per
process); this costs a few milliseconds per pin test.
"""

from __future__ import annotations

from stripe_sessions._wire import converter, encode


def rebuild() -> None:
    """Forget the encoder's field tables and the built converter; the next use rebuilds."""
    encode._FIELDS.clear()
    encode._NAMES.clear()
    converter._hooks.cache_clear()
