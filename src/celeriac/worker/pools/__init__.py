"""celeriac.worker.pools."""
