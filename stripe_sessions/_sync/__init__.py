"""The sync client: a private loop in a thread (the portal) and the generated client."""
