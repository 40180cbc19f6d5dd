"""Elided by the seed: ``include=['myapp.tasks']`` names this module, which it never shows.

The seed's tasks all live in ``tasks.py``; this module only has to exist so
that the worker's import of ``include`` succeeds (Celery's would fail too).
"""
