"""celeriac.app."""
