"""Baseline selectors the methods are compared with, one module each (registered in :mod:`kit.registry`)."""
