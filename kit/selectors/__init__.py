"""Selectors: one module each, registered in :mod:`kit.registry`."""
