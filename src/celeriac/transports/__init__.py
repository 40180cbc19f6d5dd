"""Brokers: one module per transport, behind :class:`~celeriac.transports.base.Transport`.

Transports move envelopes and never look inside task bodies. May import:
protocol, config, errors.
"""
