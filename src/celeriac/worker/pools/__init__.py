"""Execution pools (solo, threads, asyncio, prefork) behind ``pools.base.Pool``."""
