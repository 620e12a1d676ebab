"""Renderings of a certificate for people (PDF)."""
