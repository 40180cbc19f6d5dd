"""celeriac.protocol."""
