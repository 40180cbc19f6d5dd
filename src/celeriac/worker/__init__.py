"""celeriac.worker."""
