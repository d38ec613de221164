"""Gateways on the wire: read a request, authenticate it, format the reply."""
