"""The thin click layer: one module per command, shared option decorators in ``options``."""
