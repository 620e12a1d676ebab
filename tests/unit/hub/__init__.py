"""Tests of the hub role."""
