"""Simulator processes that serve the device's registers on a loopback link."""
