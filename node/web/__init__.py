"""The node's HTTP shell: the exchange endpoint partners post envelopes to, over mTLS.

`exchange` holds the handlers, `problems` the only mapping from errors to HTTP statuses,
`tls` the server's TLS context and the client's identity.
"""
