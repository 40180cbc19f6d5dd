"""Task and worker events (Celery-compatible event messages): a room beside the worker.

Not built yet; the worker's hooks are in :mod:`celeriac.worker.events`.
"""
