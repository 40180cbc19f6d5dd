"""celeriac.cli."""
