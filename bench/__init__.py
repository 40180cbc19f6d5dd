"""celeriac vs Celery benchmarks (``python bench/run.py``); see ``bench/run.py``."""
