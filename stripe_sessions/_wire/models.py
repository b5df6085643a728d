"""Response models: CustomerSession and the expanded Customer.

The component classes are shared with the parameters (see ``_params``): the
response has the same shape as the request, so one set of names serves both.
"""

from __future__ import annotations

import contextlib
import copy
import importlib
from collections.abc import Callable, Mapping, Sequence
from datetime import datetime
from typing import TYPE_CHECKING, Any, Literal

import attrs

from .._errors import APIError
from .params import Components

__all__ = ["Customer", "CustomerSession", "read_components_with"]


def _load_reader(data: Any, request_id: str | None) -> Components:
    # A session unpickled where the converter was never imported: importing it installs
    # the reader (by name, so that this module does not depend on it).
    importlib.import_module(f"{__package__}.converter")
    return _read_components(data, request_id)


#: Turns a response's ``components`` JSON into :class:`Components`. The one converter
#: (``_converter``) installs it at import: the models never import the converter, so
#: "JSON to model" lives in one module and the two do not import each other.
_read_components: Callable[[Any, str | None], Components] = _load_reader


def read_components_with(reader: Callable[[Any, str | None], Components]) -> None:
    """Install how a session's lazy ``components`` is read (called once, by ``_converter``)."""
    global _read_components  # noqa: PLW0603 - set once at import
    _read_components = reader


@attrs.frozen
class Customer:
    """A Stripe Customer, as returned when ``expand=["customer"]``.

    The fields most integrations read are typed; nested objects (``address``,
    ``discount``, ``invoice_settings``, ``shipping``) stay as Stripe's JSON.
    """

    id: str
    object: Literal["customer"] = "customer"
    address: Mapping[str, Any] | None = None
    balance: int | None = None
    created: datetime | None = None
    currency: str | None = None
    default_source: str | Mapping[str, Any] | None = None
    delinquent: bool | None = None
    description: str | None = None
    discount: Mapping[str, Any] | None = None
    email: str | None = None
    invoice_prefix: str | None = None
    invoice_settings: Mapping[str, Any] | None = None
    livemode: bool | None = None
    metadata: Mapping[str, str] = attrs.field(factory=dict)
    name: str | None = None
    next_invoice_sequence: int | None = None
    phone: str | None = None
    preferred_locales: Sequence[str] = ()
    shipping: Mapping[str, Any] | None = None
    tax_exempt: str | None = None
    test_clock: str | None = None

    def __hash__(self) -> int:
        raise TypeError(
            "Customer is not hashable: it holds Stripe's JSON objects (address, metadata...); "
            "use customer.id as a key"
        )


@attrs.frozen
class CustomerSession:
    """A created Customer Session. Hand ``client_secret`` to the front end, once.

    ::

        session = await stripe.customer_sessions.create(
            customer="cus_123", components={"pricing_table": {"enabled": True}}
        )
        session.client_secret   # single use; never log or store it
        session.expires_at      # aware UTC datetime, about 30 minutes ahead
        session.request_id      # Stripe's Request-Id, for support
        session.to_dict()       # the JSON Stripe sent, unknown fields included

    ``client_secret`` is left out of ``repr`` and ``str``. There is no ``id``:
    Stripe gives Customer Sessions none. ``components`` is structured from the
    response the first time it is read: most callers only hand on the secret.
    Sessions compare by value, copy and pickle (even when ``components`` cannot be
    read), and are not hashable: use ``session.client_secret`` as a key.
    """

    client_secret: str = attrs.field(repr=False)
    created: datetime
    expires_at: datetime
    livemode: bool
    customer: str | Customer | None = None
    object: Literal["customer_session"] = "customer_session"
    customer_account: str | None = None
    #: Always set: Stripe sends it with every session (an absent or null ``components``,
    #: which Stripe does not send, reads as an empty :class:`Components`).
    components: Components = attrs.field(factory=Components)
    #: ``Request-Id`` of the response that created (or replayed) this session.
    request_id: str | None = attrs.field(default=None, eq=False)
    #: ``True`` when Stripe replayed an earlier answer for the same idempotency key.
    idempotent_replayed: bool = attrs.field(default=False, eq=False)
    _raw: Mapping[str, Any] = attrs.field(factory=dict, repr=False, eq=False, alias="raw")

    @property
    def customer_id(self) -> str | None:
        """The customer's id, whether or not ``customer`` was expanded."""
        if isinstance(self.customer, Customer):
            return self.customer.id
        return self.customer

    def to_dict(self) -> dict[str, Any]:
        """Return the JSON object Stripe sent, including fields this SDK does not model."""
        return copy.deepcopy(dict(self._raw))

    # eq, hash and pickling are written out (attrs would generate them) so that none of
    # them reads ``components``, which may be unset (lazy) or unreadable.
    def _compared(self) -> tuple[Any, ...]:
        try:
            components: Any = self.components
        except APIError:  # unreadable: compare what Stripe sent
            components = ("unreadable", self._raw.get("components"))
        return (
            self.client_secret,
            self.created,
            self.expires_at,
            self.livemode,
            self.customer,
            self.object,
            self.customer_account,
            components,
        )

    def __eq__(self, other: Any) -> bool:
        if other.__class__ is not self.__class__:
            return NotImplemented
        return bool(self._compared() == other._compared())

    def __hash__(self) -> int:
        raise TypeError(
            "CustomerSession is not hashable: it may hold Stripe's JSON (an expanded "
            "customer); use session.client_secret as a key"
        )

    def __getstate__(self) -> dict[str, Any]:
        # Only the slots that are set: an unset ``components`` stays lazy in the copy.
        state = {}
        for field in attrs.fields(type(self)):
            with contextlib.suppress(AttributeError):  # an unset slot
                state[field.name] = object.__getattribute__(self, field.name)
        return state

    def __setstate__(self, state: dict[str, Any]) -> None:
        for name, value in state.items():
            object.__setattr__(self, name, value)

    def __repr__(self) -> str:
        # Written out (attrs would write the same) so that a repr never raises, even
        # when components cannot be read: a repr goes into logs and tracebacks.
        parts = []
        for field in attrs.fields(type(self)):
            if not field.repr:
                continue
            try:
                value = repr(getattr(self, field.name))
            except APIError:
                value = "<unreadable: see to_dict()>"
            parts.append(f"{field.name}={value}")
        return f"{type(self).__name__}({', '.join(parts)})"

    if not TYPE_CHECKING:  # hidden from type checkers, so a misspelt attribute still fails

        def __getattr__(self, name: str) -> Any:
            # Only an unset slot gets here: ``components`` of a session built from a
            # response is left unset until first read (see _converter.structure_session).
            if name != "components":
                raise AttributeError(
                    f"{type(self).__name__!r} object has no attribute {name!r}", name=name, obj=self
                )
            value = _read_components(self._raw.get("components"), self.request_id)
            object.__setattr__(self, "components", value)
            return value
