"""celeriac.testing."""
