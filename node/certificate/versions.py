"""The SPSCertificate schema versions this node speaks (docs/protocol.md, "Choosing the
schema version").

The node builds, validates and reads the D17A SPSCertificate only (node/certificate/xmlns.py,
node/certificate/schema). The registry lists this tuple as each enrolled NPPO's
`schema_versions`; a sender picks the highest version both ends speak that is in force
network-wide (node/directory/schemas.py). A release that learns another version adds it
here, and nowhere else.
"""

from __future__ import annotations

from typing import Final

SCHEMA_VERSIONS: Final[tuple[str, ...]] = ("D17A",)
