"""The thin click layer: one module per command, shared option decorators in ``options``.

Each command imports its library modules inside the command function, not at the top of its module:
``fusionforge --help`` (and every other command) then loads neither Ray, torch nor the packer's numba
kernels it does not use. These are the only lazy imports of fusionforge modules that are not there to
keep one heavy dependency out (``tests/test_import_cycles.py``).
"""
