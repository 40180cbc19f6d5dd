"""The worker: consumer, completion (results and follow-ups), pools, state.

One asyncio supervisor per process (:mod:`celeriac.worker.worker`). May import:
app, canvas, backends, transports, protocol, config, errors, signals.
"""
