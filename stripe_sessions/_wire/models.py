"""Response models: CustomerSession and the expanded Customer.

The component classes are shared with the parameters (see ``params``): the
response has the same shape as the request, so one set of names serves both.
"""

from __future__ import annotations

import copy
from collections.abc import Callable, Mapping, Sequence
from datetime import datetime
from typing import Any, Final, Literal, NamedTuple

import attrs

from .._errors import APIError
from .params import Components

__all__ = ["Customer", "CustomerSession", "Unread"]


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

    # eq, pickling and repr are written out (attrs would generate them) so that none of
    # them raises when ``components`` cannot be read (see _ReadOnFirstUse).
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
        fields = attrs.fields(type(self))
        state = {f.name: getattr(self, f.name) for f in fields if f.name != "components"}
        state["components"] = _COMPONENTS.stored(self)  # not read: stays so in the copy
        return state

    def __setstate__(self, state: dict[str, Any]) -> None:
        for name, value in state.items():
            object.__setattr__(self, name, value)

    def __repr__(self) -> str:
        # A repr goes into logs and tracebacks: it never raises.
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


class Unread(NamedTuple):
    """What ``CustomerSession.components`` holds until first read: the function that reads it.

    The converter passes its own ``structure_components``: the models need not import the
    converter, and a pickled session names the function, so unpickling imports it.
    """

    read: Callable[[Any, str | None], Components]


class _ReadOnFirstUse:
    """``CustomerSession.components``: structured from the answer's JSON when first read.

    Why: a create's caller mostly hands on the client secret, and structuring
    ``components`` up front makes a whole create 14% dearer (``benchmarks/instructions.py``:
    sdk 814 K -> 930 K instructions, piece:structure 31 K -> 140 K); and components this
    SDK cannot read must not cost the secret. The slot holds an :class:`Unread` until then.
    """

    def __init__(self, slot: Any) -> None:
        self.slot = slot  # the slot attrs made for the field

    def __get__(self, session: CustomerSession | None, owner: type | None = None) -> Any:
        if session is None:
            return self
        value = self.slot.__get__(session, owner)
        if type(value) is Unread:
            value = value.read(session._raw.get("components"), session.request_id)
            self.slot.__set__(session, value)
        return value

    def __set__(self, session: CustomerSession, value: Any) -> None:
        self.slot.__set__(session, value)

    def stored(self, session: CustomerSession) -> Any:
        """What the slot holds (an :class:`Unread` or the components), read or not."""
        return self.slot.__get__(session, type(session))


_COMPONENTS: Final = _ReadOnFirstUse(CustomerSession.components)
CustomerSession.components = _COMPONENTS  # type: ignore[assignment]
