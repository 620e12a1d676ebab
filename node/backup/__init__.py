"""Backups of a node: its directory and SQLite store in one encrypted, authenticated file
(`format`: the bytes, pure; `archive`: backing up, and `restoring`, the shell)."""
