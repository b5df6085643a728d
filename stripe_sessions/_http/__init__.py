"""HTTP: the transport, the connection pool, retry rules and per-call options."""
