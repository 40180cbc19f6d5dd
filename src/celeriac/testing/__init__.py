"""Helpers for tests: contract suites every transport/backend passes, fixtures for users."""
