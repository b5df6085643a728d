"""CreateParams: all parameters of one create as one value, typically a batch item.

Apart from ``params`` because its ``components`` may be the generated ``ComponentsDict``
(``dicts`` is generated from ``params``: one module importing the other both ways would
be a cycle).
"""

from __future__ import annotations

from collections.abc import Mapping, Sequence
from typing import TYPE_CHECKING, Any

import attrs

from .params import Components

if TYPE_CHECKING:  # typing only: dictgen reads this class to write dicts.py
    from .dicts import ComponentsDict

__all__ = ["CreateParams"]


@attrs.frozen
class CreateParams:
    """All parameters of one ``create``, as one value (handy for batches)::

    CreateParams(customer="cus_123", components=Components(buy_button=BuyButton(enabled=True)))
    """

    components: Components | ComponentsDict
    customer: str | None = None
    customer_account: str | None = None
    expand: Sequence[str] | None = None
    #: Sent as given, for fields this SDK does not know yet (see ``create``).
    extra_params: Mapping[str, Any] | None = None
