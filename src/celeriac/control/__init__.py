"""celeriac.control."""
