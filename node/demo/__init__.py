"""`ephyto demo`: a registry and three nodes on loopback, exchanging certificates."""
