"""`ephyto doctor`: check a node's files, its directory and its connections, and say what to do.

`node.doctor.checks` holds the pure checks (values in, a Finding out);
`node.doctor.run` is the thin shell that reads the node's files and asks the network
(imported on use: it loads the network libraries).
"""
