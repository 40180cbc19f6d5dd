"""celeriac: a fast, reliable, async-native distributed task queue, wire-compatible with Celery."""

__version__ = "0.1.0"
