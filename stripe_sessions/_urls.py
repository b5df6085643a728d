"""Credentials in URLs (a proxy's, Redis's): one way to show a URL without them.

Hand-written, not ``urllib.parse``: ``urlsplit`` ends the host at the first ``/ ? #``,
so ``http://u:pa/ss@host`` reads as host ``u`` with the password in the path, and a
masker that trusts it shows the password. Here whatever could be a credential is
masked: the user info (up to the last ``@`` before the path), the value of every query
parameter but those named harmless, the fragment, and, when an ``@`` comes after the
first ``/ ? #`` (where the password ends cannot be known), everything after ``://``.
A string without ``scheme://`` is read as all authority: ``user:pass@proxy:3128`` shows
as ``****@proxy:3128``, and ``http:/u:pa/ss@h`` (an ``@`` after a ``/``) as ``****``.
"""

from __future__ import annotations

import base64
import re
from collections.abc import Collection
from typing import NamedTuple
from urllib.parse import unquote, unquote_plus

from ._safe_text import redact

__all__ = ["AMBIGUOUS", "MaskedURL", "mask_url", "masked", "url_secrets"]

#: A URL's scheme (RFC 3986); what stands before a ``://`` that is not one may be a
#: password (``http:/u:pa://ss@host``).
_SCHEME = re.compile(r"[A-Za-z][A-Za-z0-9+.-]*")

#: Why a URL with an ``@`` after its host cannot be used (shown with the argument's name).
AMBIGUOUS = (
    "an @ after the host (a password with an unencoded / ? # or @) is "
    "ambiguous: percent-encode it (%2F %3F %23 %40)"
)


class MaskedURL(NamedTuple):
    """A URL as it may be shown, and the credentials it held."""

    #: The URL with each credential shown as ``****``.
    text: str
    #: Each credential in every form a message could quote it (as written, decoded,
    #: ``user:password``, and that in base64 as a ``Proxy-Authorization`` header has
    #: it), longest first, so that :func:`redact` masks a long one before its parts.
    secrets: tuple[str, ...]
    #: An ``@`` after the host: where the user info ends cannot be known.
    ambiguous: bool

    def __repr__(self) -> str:  # a local on a traceback rendered with locals: no secret
        return f"MaskedURL({self.text!r}, secrets=<{len(self.secrets)}>)"


def masked(url: str, shown_query: Collection[str] = ()) -> MaskedURL:
    """``url`` without its credentials; query parameters named in ``shown_query`` are
    shown as they are (e.g. Redis's ``?db=``), every other value is masked."""
    scheme, sep, rest = url.partition("://")
    if not sep or not _SCHEME.fullmatch(scheme):  # no scheme: all of it may be user info
        scheme, sep, rest = "", "", url
    end = min((i for i in map(rest.find, "/?#") if i >= 0), default=len(rest))
    if "@" in rest[end:]:
        return MaskedURL(f"{scheme}{sep}****", (rest,) if rest else (), True)
    rest, hash_, fragment = rest.partition("#")
    rest, q, query = rest.partition("?")
    netloc, slash, path = rest.partition("/")
    secrets: list[str] = []
    if "@" in netloc:
        userinfo, _, netloc = netloc.rpartition("@")
        user, _, password = userinfo.partition(":")
        pair = f"{unquote(user)}:{unquote(password)}"
        secrets += [userinfo, password, unquote(password), pair]
        secrets.append(base64.b64encode(pair.encode("utf-8", "surrogatepass")).decode())
        netloc = "****@" + netloc
    shown = []
    for item in query.split("&") if query else ():
        key, eq, value = item.partition("=")
        if unquote_plus(key) in shown_query:
            shown.append(item)
        else:
            secrets += [value, unquote_plus(value), unquote(value)]
            shown.append(f"{key}{eq}****" if eq else item)
    if hash_:
        secrets.append(fragment)
    found = tuple(sorted({s for s in secrets if s}, key=len, reverse=True))
    text = f"{scheme}{sep}{netloc}{slash}{path}"
    text += f"{q}{'&'.join(shown)}" + (f"{hash_}****" if hash_ else "")
    # A credential that also stands elsewhere (``?client_name=<password>``): masked
    # there too, if long enough to be one (masking every ``1`` would garble the host).
    return MaskedURL(redact(text, *(s for s in found if len(s) >= 3)), found, False)


def mask_url(url: str) -> str:
    """``url`` as it may appear in a repr or a message (``http://****@proxy:3128``)."""
    return masked(url).text


def url_secrets(url: str | None) -> tuple[str, ...]:
    """The credentials in ``url`` that no message may quote (those of 3 characters or
    more: masking every ``a`` of a message would hide it, and guards nothing)."""
    if not url:
        return ()
    return tuple(s for s in masked(url).secrets if len(s) >= 3)
