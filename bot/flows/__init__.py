"""Flows as data: the YAML loader, the model, the compiler and the lint."""
