"""A create on the wire: where it is sent, and its answer read into the session."""

from __future__ import annotations

from typing import TYPE_CHECKING, Final

from .._errors import APIError
from .converter import structure_session

if TYPE_CHECKING:
    from .._http.transport import Answer
    from .models import CustomerSession

__all__ = ["PATH", "session_of"]

#: Where sessions are created.
PATH: Final = "/v1/customer_sessions"


def session_of(answer: Answer) -> CustomerSession:
    """The session in a successful answer, or the APIError saying why it cannot be read."""
    try:
        return structure_session(answer.data, answer.request_id, answer.replayed)
    except APIError as e:
        failure = e
    # Raised afresh, with no frame that holds the answer (it has the client secret).
    failure.idempotency_key = answer.options.idempotency_key
    del answer
    raise failure.with_traceback(None)
