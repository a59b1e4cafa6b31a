"""The model contract, the registry and the built-in models."""
