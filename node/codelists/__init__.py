"""Harmonised code lists, bundled as versioned data."""
