"""Outreach: alerts to migrants who asked for them (docs/spec.md §10).

The rules are pure (no I/O): subscriptions, broadcasts, quiet hours; `service` applies
them to the store for the web app."""
