"""celeriac.beat: periodic tasks.

``schedules`` holds the pure schedule maths (``schedule``, ``crontab``,
``solar``, ``maybe_schedule``); ``_cron`` and ``_solar`` are its helpers. The
scheduler loop and entry stores build on them. May import: worker and below,
errors, config, the standard library.
"""
