"""Sample certificates bundled with the package (fictitious data)."""
