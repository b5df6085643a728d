"""``python -m stripe_sessions``: the command line (see :mod:`stripe_sessions._cli.main`)."""

from ._cli.main import main

if __name__ == "__main__":
    raise SystemExit(main())
