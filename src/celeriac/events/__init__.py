"""celeriac.events."""
