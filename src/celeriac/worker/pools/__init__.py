"""Execution pools (solo, threads, asyncio, prefork) behind :class:`~celeriac.worker.pools.base.Pool`."""
