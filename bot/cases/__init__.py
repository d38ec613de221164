"""The case domain: references, model, lifecycle."""
