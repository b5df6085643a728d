"""The dict forms are type-checked: mypy --strict and pyright strict over a user's module.

One module holds every case, one per line: each line of BAD must be an error
in both checkers (a misspelt key, a bad enum value, a wrong type, a missing ``enabled``, at
any depth, in ``create``, batch items and ``CreateParams``, async and sync), and no other
line may be. One mypy run and one pyright run (a few seconds each).
Also: ``_wire/dicts.py`` is what ``dictgen`` writes from the attrs classes today.
"""

# ruff: noqa: E501 - each case is one line of user code (the line its error is reported at)
from __future__ import annotations

import json
import subprocess
import sys
from pathlib import Path

import pytest

from stripe_sessions._wire import dictgen

mypy_api = pytest.importorskip("mypy.api")

HEADER = """\
from __future__ import annotations

import stripe_sessions as ss

PE: ss.PaymentElementDict = {"enabled": True, "features": {"payment_method_save": "enabled"}}


async def cases(c: ss.AsyncClient, s: ss.Client, ids: list[str]) -> None:
"""

GOOD_PE = (
    '{"payment_element": {"enabled": True, "features": {"payment_method_save": "enabled", '
    '"payment_method_allow_redisplay_filters": ["always", "limited"], '
    '"payment_method_redisplay_limit": 5, "payment_method_save_usage": "off_session", '
    '"payment_method_remove": None}}}'
)
ITEM = '{"customer": i, "components": {"pricing_table": {"enabled": True}}}'

#: Lines of a function body that both checkers must pass.
GOOD = [
    'await c.customer_sessions.create(customer="c", components={"pricing_table": {"enabled": True}})',
    f'await c.customer_sessions.create(customer="c", components={GOOD_PE})',
    'await c.customer_sessions.create(customer="c", components={"tax_id_element": {"enabled": True, "features": {"tax_id_save": "enabled", "tax_id_redisplay": "disabled"}}}, stripe_version="2025-10-29.preview")',
    'await c.customer_sessions.create(customer="c", components={"pricing_table": ss.PricingTable(enabled=True), "payment_element": PE})',
    'await c.customer_sessions.create(customer="c", components=ss.Components(buy_button=ss.BuyButton(enabled=True)))',
    's.customer_sessions.create(customer="c", components={"customer_sheet": {"enabled": True, "features": {"payment_method_remove": "enabled"}}})',
    f"await c.customer_sessions.create_many({ITEM} for i in ids)",
    f"await c.customer_sessions.create_many([{ITEM} for i in ids])",
    f"s.customer_sessions.create_many({ITEM} for i in ids)",
    f"_ = [r for r in s.customer_sessions.stream_many({ITEM} for i in ids)]",
    '_ = c.customer_sessions.stream_many([{"customer_account": "acct_1", "components": {"buy_button": {"enabled": True}}, "expand": ["customer"], "extra_params": {"x": 1}}])',
    '_ = ss.CreateParams(customer="c", components={"pricing_table": {"enabled": True}})',
]
#: Lines that both checkers must report, each on its own line.
BAD = [
    'await c.customer_sessions.create(customer="c", components={"pricing_tabel": {"enabled": True}})',
    'await c.customer_sessions.create(customer="c", components={"payment_element": {"enabled": True, "features": {"payment_method_save": "on"}}})',
    'await c.customer_sessions.create(customer="c", components={"payment_element": {"enabled": True, "features": {"payment_method_sav": "enabled"}}})',
    'await c.customer_sessions.create(customer="c", components={"payment_element": {"enabled": True, "features": {"payment_method_allow_redisplay_filters": ["always", "sometimes"]}}})',
    'await c.customer_sessions.create(customer="c", components={"payment_element": {"enabled": True, "features": {"payment_method_redisplay_limit": "3"}}})',
    'await c.customer_sessions.create(customer="c", components={"tax_id_element": {"enabled": True, "features": {"tax_id_save": "on"}}})',
    's.customer_sessions.create(customer="c", components={"buy_button": {"enabled": "yes"}})',
    's.customer_sessions.create(customer="c", components={"buy_button": {}})',
    's.customer_sessions.create(customer="c", components={"mobile_payment_element": {"enabled": True, "features": {"payment_method_save_allow_redisplay_override": "never"}}})',
    'await c.customer_sessions.create_many({"customer": i, "components": {"pricing_tabel": {"enabled": True}}} for i in ids)',
    'await c.customer_sessions.create_many([{"custmer": "c", "components": {"pricing_table": {"enabled": True}}}])',
    's.customer_sessions.create_many({"customer": i, "components": {"pricing_table": {"enabld": True}}} for i in ids)',
    '_ = ss.CreateParams(customer="c", components={"pricing_tabel": {"enabled": True}})',
    '_ = ss.CreateParams(customer="c", components={"customer_sheet": {"enabled": True, "features": {"payment_method_remove": "maybe"}}})',
]
CASES = [(code, False) for code in GOOD] + [(code, True) for code in BAD]


def user_module() -> tuple[str, set[int], set[int]]:
    """The module's text, the lines that must be errors and the lines that must not."""
    lines = HEADER.splitlines()
    bad, good = set(), set()
    for code, is_error in CASES:
        lines.append(f"    {code}")
        (bad if is_error else good).add(len(lines))
    return "\n".join(lines) + "\n", bad, good


def test_dicts_module_is_generated_from_the_attrs_classes() -> None:
    assert dictgen.generate() == dictgen.TARGET.read_text()
    assert dictgen.main(["--check"]) == 0


def test_each_dict_has_its_class_fields_and_required_keys_at_run_time() -> None:
    import attrs  # noqa: PLC0415 - this test only

    import stripe_sessions as ss  # noqa: PLC0415

    for cls in (ss.Components, ss.PaymentElement, ss.TaxIdElement, ss.CreateParams):
        typed = getattr(ss, f"{cls.__name__}Dict")
        fields = attrs.fields(cls)
        assert set(typed.__annotations__) == {f.name for f in fields}
        assert typed.__required_keys__ == {f.name for f in fields if f.default is attrs.NOTHING}
        assert f"{cls.__name__}Dict" in ss.__all__


def test_a_stale_dicts_module_is_caught(tmp_path: Path, monkeypatch: pytest.MonkeyPatch) -> None:
    stale = tmp_path / "dicts.py"
    stale.write_text(dictgen.TARGET.read_text().replace("    tax_id_save: Toggle | None\n", ""))
    monkeypatch.setattr(dictgen, "TARGET", stale)
    assert dictgen.main(["--check"]) == 1
    assert dictgen.main([]) == 0  # regenerates
    assert stale.read_text() == dictgen.generate()


def _mypy_errors(module: Path, tmp_path: Path) -> tuple[set[int], str]:
    out, err, _ = mypy_api.run(
        [
            "--strict",
            "--no-incremental",
            "--cache-dir",
            str(tmp_path / ".mypy_cache"),
            "--python-version",
            "3.10",
            str(module),
        ]
    )
    lines = set()
    for line in out.splitlines():
        parts = line.split(":", 3)
        if len(parts) == 4 and parts[2].strip() == "error":
            lines.add(int(parts[1]))
    return lines, out + err


def _pyright_errors(module: Path, tmp_path: Path) -> tuple[set[int], str]:
    config = tmp_path / "pyrightconfig.json"
    config.write_text(json.dumps({"typeCheckingMode": "strict", "pythonVersion": "3.10"}))
    argv = ["-m", "pyright", "--outputjson", "-p", str(config), "--pythonpath", sys.executable]
    done = subprocess.run(
        [sys.executable, *argv, str(module)],
        capture_output=True,
        text=True,
        timeout=300,
        check=False,
        cwd=tmp_path,
    )
    report = json.loads(done.stdout)
    lines = {
        d["range"]["start"]["line"] + 1
        for d in report["generalDiagnostics"]
        if d["severity"] == "error"
    }
    return lines, done.stdout[-4000:] + done.stderr[-2000:]


# A static check: what mypy (pinned to python_version 3.10) and pyright find does not
# depend on the Python running them, so CI runs it on one Python (.ci/test-pythons).
@pytest.mark.typecheck
@pytest.mark.parametrize("checker", ["mypy", "pyright"])
def test_dict_literals_are_type_checked(checker: str, tmp_path: Path) -> None:
    text, bad, good = user_module()
    module = tmp_path / "user_code.py"
    module.write_text(text)
    run = _mypy_errors if checker == "mypy" else _pyright_errors
    errors, output = run(module, tmp_path)
    numbered = "\n".join(f"{i:3} {line}" for i, line in enumerate(text.splitlines(), 1))
    assert errors & good == set(), f"correct dicts reported:\n{output}\n{numbered}"
    assert bad - errors == set(), f"wrong dicts not reported:\n{output}\n{numbered}"
    assert errors <= bad, f"errors elsewhere:\n{output}\n{numbered}"
