"""Observing calls: request events for hooks, OpenTelemetry spans and metrics (issue #21)."""
