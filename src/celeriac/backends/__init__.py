"""Result stores: one module per backend, behind :class:`~celeriac.backends.base.ResultBackend`.

May import: transports (for shared connection helpers), protocol, config, errors.
"""
