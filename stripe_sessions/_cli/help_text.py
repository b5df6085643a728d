"""What ``--help`` says of demo, create and batch (fake-server's: fake_args): text, examples."""

from __future__ import annotations

from typing import Final

__all__ = [
    "BATCH_DESCRIPTION",
    "BATCH_EPILOG",
    "CREATE_DESCRIPTION",
    "CREATE_EPILOG",
    "DEMO_DESCRIPTION",
    "DEMO_EPILOG",
    "MAIN_DESCRIPTION",
    "MAIN_EPILOG",
]

# Written with their line breaks and shown as they are (RawDescriptionHelpFormatter):
# a test keeps every line within 88 columns.

MAIN_DESCRIPTION: Final = (
    "Create Stripe Customer Sessions, or try the SDK against an embedded fake Stripe."
)
MAIN_EPILOG: Final = """\
environment:
  STRIPE_API_KEY             the secret key (create, batch)
  STRIPE_BASE_URL            the API's base URL (default https://api.stripe.com), e.g.
                             a fake-server's http://127.0.0.1:12111 (--base-url wins)
  STRIPE_SESSIONS_REDIS_URL  batch: share one rate budget through this Redis
  STRIPE_SESSIONS_DEBUG      show tracebacks and the SDK's log, as --debug does

examples:
  stripe-sessions demo
  stripe-sessions create --customer cus_123 --component payment_element
  stripe-sessions batch customers.txt > sessions.jsonl
  stripe-sessions COMMAND --help
"""

DEMO_DESCRIPTION: Final = """\
Start the embedded fake Stripe with faults (5% server errors, 2% connection resets, 3%
429s), create one session, then batch-create --count more through the SDK's retries
and pacing, and report what the server saw: sessions created, duplicates (none) and
requests. Needs no API key and no network.

With --processes N: N batch processes against one rate-limited fake, twice: first each
pacing itself, then all sharing one budget through Redis (--redis-url, else a
redis-server started for the demo); the 429s of the two runs are compared.
"""
DEMO_EPILOG: Final = """\
examples:
  stripe-sessions demo
  stripe-sessions demo --count 1000 --rate 300 --concurrency 32
  stripe-sessions demo --processes 4
"""

CREATE_DESCRIPTION: Final = """\
Create one Customer Session and print it as JSON on stdout: the session as Stripe sent
it (its client_secret included: treat the output as a secret), plus "replayed": true
when Stripe answered with a session created earlier under the same --idempotency-key
(Idempotent-Replayed), false when it created one now.

The key comes from $STRIPE_API_KEY or --api-key-file, the API from --base-url or
$STRIPE_BASE_URL. Exit status: 0 created or replayed, 1 Stripe refused or could not be
reached, 2 usage error, 3 stdout could not be written (the message says how to get the
session back), 141 stdout closed.
"""
CREATE_EPILOG: Final = """\
examples:
  export STRIPE_API_KEY=sk_test_...
  stripe-sessions create --customer cus_123
  stripe-sessions create --customer cus_123 --component payment_element \\
      --component pricing_table --expand customer
  stripe-sessions create --customer cus_123 --idempotency-key order-42
      (run it twice: one session; the second answer says "replayed": true)
  STRIPE_BASE_URL=http://127.0.0.1:12111 stripe-sessions create --customer cus_1
      (against `stripe-sessions fake-server` running in another terminal)
"""

BATCH_DESCRIPTION: Final = """\
Read customer ids (UTF-8, one per line; blank lines and # comments skipped), send each
as soon as it is read, and write one JSON line per session to stdout as soon as it is
back, in the order they come back:
  {"index", "customer", "idempotency_key", "client_secret", "expires_at",
   "request_id", "replayed"}    or    {"index", "customer", "idempotency_key", "error"}
"replayed" is true when Stripe answered with a session created earlier under the same
key (Idempotent-Replayed). Progress and a closing summary go to stderr; the summary
counts sessions created now apart from replayed ones ("created 10, replayed 20").

The batch key is printed first: --batch-key KEY runs the batch again without creating
anything twice (what the first run created comes back replayed). A line that is not
UTF-8, is over 32 KiB or holds whitespace other than spaces and tabs stops the batch
after the ids before it (--skip-invalid skips it).

Exit status: 0 all created, 1 some items failed (or the server could not be reached),
2 usage or input error, 3 stdout could not be written, 130 Ctrl-C, 141 stdout closed,
143 SIGTERM; a stderr that breaks mid-batch changes nothing.
"""
BATCH_EPILOG: Final = """\
examples:
  stripe-sessions batch customers.txt > sessions.jsonl
  stripe-sessions batch customers.txt --batch-key KEY >> sessions.jsonl   (resume)
  cut -d, -f1 customers.csv | stripe-sessions batch --rate 50 --concurrency 32
  stripe-sessions batch customers.txt --redis-url redis://localhost:6379/0 --rate 100
"""
