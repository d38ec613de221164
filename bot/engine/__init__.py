"""The pure conversation engine: no Redis, no HTTP, no clock."""
