"""Outreach: alerts to migrants who asked for them (SPEC §10). Pure rules, no I/O."""
