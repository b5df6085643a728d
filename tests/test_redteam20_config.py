"""Red team (#20): STRIPE_BASE_URL and base_url= under odd values.

Any value gives a client whose repr stays short (the URL it shows is at most
``MAX_BASE_URL`` characters: a 100 KB variable made a 100 KB repr, which error trackers
render for every frame holding the client) or a ValidationError naming where the value
came from, never quoting a long value or a password. ``base_url=`` wins over the
variable, even a bad one.
"""

from __future__ import annotations

import pytest
from hypothesis import given
from hypothesis import strategies as st

import stripe_sessions as ss
from stripe_sessions._config import MAX_BASE_URL

KEY = "sk_test_redteam20_config_1234"
PASSWORD = "hunter2secret"

odd = st.one_of(
    st.text(max_size=50),
    st.builds(
        lambda n, tail: "http://127.0.0.1:1/" + "p" * n + tail,
        st.integers(0, 10_000),
        st.sampled_from(["", "/", "//", " ", "\n", "?q", "é"]),
    ),
    st.builds(lambda n: f"https://user:{PASSWORD}@api.stripe.com/" + "x" * n, st.integers(0, 5000)),
    st.sampled_from(["http://[::1]:12111", "http://[::1", " http://h", "http://h\r", "HTTP://H"]),
)


@given(value=odd, where=st.sampled_from(["env", "argument"]))
def test_any_value_gives_a_short_repr_or_a_named_error(value: str, where: str) -> None:
    with pytest.MonkeyPatch.context() as env:
        env.delenv("STRIPE_BASE_URL", raising=False)
        if where == "env":
            env.setenv("STRIPE_BASE_URL", value.replace("\x00", ""))
        try:
            client = ss.AsyncClient(api_key=KEY, base_url=value if where == "argument" else None)
        except ss.ValidationError as e:
            assert e.param == ("STRIPE_BASE_URL" if where == "env" else "base_url")
            assert PASSWORD not in str(e) and len(str(e)) < 400
            return
    shown = repr(client)
    assert len(client.config.base_url) <= MAX_BASE_URL
    assert len(shown) <= MAX_BASE_URL + 200 and PASSWORD not in shown


def test_a_base_url_of_the_most_characters_is_taken_one_more_is_not(
    monkeypatch: pytest.MonkeyPatch,
) -> None:
    head = "http://127.0.0.1:1/"
    longest = head + "p" * (MAX_BASE_URL - len(head))
    assert ss.AsyncClient(api_key=KEY, base_url=longest).config.base_url == longest
    monkeypatch.setenv("STRIPE_BASE_URL", longest + "p")
    with pytest.raises(ss.ValidationError, match="STRIPE_BASE_URL: must be at most 2048"):
        ss.AsyncClient(api_key=KEY)
    # The argument wins over the variable, even one the SDK refuses.
    assert ss.AsyncClient(api_key=KEY, base_url=longest).config.base_url_from is None
