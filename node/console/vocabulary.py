"""The words the console shows from values the node keeps in English: roles and what
they do, routes, delivery states, the importer's decisions, where a certificate stands,
and which way it went.

The templates translate such a value as it comes (`_(user.role)`, `_(r.description)`,
`_(delivery.state)`, `_(answer.decision)`), so no literal string marks it for Babel's
extractor there: it is marked here instead, once, with `N_`, and so lands in every
catalogue. The values are the node's own (node.console.users.ROLES, the API's message
states and routes, node.envelope.response.Decision, node.store.links.Lifecycle);
tests/unit/console/test_catalogues.py checks that these tuples still name all of them.
"""

from __future__ import annotations

from typing import Final

from node.console.i18n import N_

# The console's roles (node.console.users.ROLES), shown beside the signed-in user's name.
ROLES: Final = (N_("admin"), N_("clerk"), N_("officer"), N_("inspector"), N_("auditor"))
# Each role's one line for people, as the users page offers them (the same order).
ROLE_DESCRIPTIONS: Final = (
    N_("manages the console's users and settings; drafts and signs nothing"),
    N_("drafts certificates for an officer to approve"),
    N_("the certifying officer: approves and issues certificates, never own drafts"),
    N_("the import inspector: receives certificates and answers them"),
    N_("reads everything, changes nothing"),
)
# How a message travelled: straight to the partner's node, or through the IPPC hub.
ROUTES: Final = (N_("direct"), N_("hub"))
# A stored message's state (the API's MessageSummary.state): an issued certificate's
# delivery, and the delivery of the answer an inspector sent.
MESSAGE_STATES: Final = (
    N_("queued"),
    N_("relayed"),
    N_("delivered"),
    N_("failed"),
    N_("received"),
)
# The importing NPPO's decision on a certificate (node.envelope.response.Decision).
DECISIONS: Final = (N_("accepted"), N_("rejected"), N_("correction-requested"))
# Where a sent or received certificate stands (node.store.links.Lifecycle.status); the
# received page reads "The exporter has {status} this certificate" with it.
LIFECYCLE: Final = (N_("issued"), N_("withdrawn"), N_("replaced"))
# The monthly report's two directions.
DIRECTIONS: Final = (N_("sent"), N_("received"))
