"""celeriac.transports."""
