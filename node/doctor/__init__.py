"""`ephyto doctor`: check a node's files, its directory and its connections, and say what to do.

`node.doctor.checks` holds the pure checks (values in, a Finding out);
`node.doctor.run` is the thin shell that reads the node's files and asks the network
(imported on use: it loads the network libraries). `node.doctor.key_checks` (pure) and
`node.doctor.key_access` (its shell) say how the keys' protection stands: the passphrase
of encrypted key files, and the signing key in a PKCS#11 token.
"""
