"""The ``celeriac`` command: one module per subcommand. Composition root: nothing imports it."""
