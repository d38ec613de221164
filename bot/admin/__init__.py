"""The operators' admin API (and, later, the web console)."""
