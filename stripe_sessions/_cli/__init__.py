"""The ``stripe-sessions`` command: create, batch, demo and fake-server."""
