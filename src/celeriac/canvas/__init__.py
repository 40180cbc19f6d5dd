"""celeriac.canvas."""
