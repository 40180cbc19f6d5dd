"""celeriac.backends."""
