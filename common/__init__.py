"""The kit every app stands on: errors, the API's base view and parsers, the change feed,
prepared statements, metrics, logs and idempotency. It imports no app."""
