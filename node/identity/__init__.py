"""A node's identity: its keys, its configuration, and the enrolment request for the registry.

`keys` and `enrolment` are pure (bytes and values in, values out, time passed in);
`config` parses and writes the TOML file; `store` is the shell that writes it all to disk.
"""
