"""Remote control (Celery-compatible pidbox broadcast): a room beside the worker.

Not built yet; revoke reaches workers through the transport broadcast.
"""
