"""Conformance: seeded vectors, scenarios, independent expectations and runners."""
