"""Plugins used only by the tests."""
