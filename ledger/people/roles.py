"""The role words of the ledger, and the groups of roles that may do one thing: one place.

Every role check in ``ledger/`` and ``api/`` names these constants; the strings are wire
formats (API key roles in the database, ``x-roles`` in the OpenAPI document, the ``role``
of a signed decision, the rate-limit table), so they never change. The decision rules of
``ledger.core.decision`` (``ROLE_ACTIONS``) use the same words for the roles that decide.

Roles
=====
``volunteer``          reports tallies and uploads photos; signs in with their Ethereum key
``constituency_head``  reviews the reports of their constituencies (``scope``)
``war_room``           the coalition's operations room: everything read-only, plus the feed
``coordinator``        an organisation's coordinator: registers and assigns its volunteers
``newsroom``           media partners: the open data at higher rate limits, plus the feed
``auditor``            anyone who wants a key for higher rate limits on the open data
``admin``              creates principals and registers volunteers
``anonymous``          (no credentials) the public: open data at the lowest rate limit
"""

from __future__ import annotations

__all__ = [
    "ADMIN",
    "ADMIN_ONLY",
    "ANONYMOUS",
    "ASSIGNING_ROLES",
    "AUDITOR",
    "CONSTITUENCY_HEAD",
    "COORDINATOR",
    "DECIDERS",
    "EVERYONE",
    "FEED_READERS",
    "KEY_ROLES",
    "LEDGER",
    "LEVEL_ROLES",
    "NEWSROOM",
    "OVERSIGHT",
    "PEOPLE_MANAGERS",
    "RELAYING_ROLES",
    "REPORTER_VIEWERS",
    "ROLES",
    "SIGNED_IN_ROLES",
    "REASON_READERS",
    "VOLUNTEER",
    "VOLUNTEERS",
    "WAR_ROOM",
]

VOLUNTEER = "volunteer"
CONSTITUENCY_HEAD = "constituency_head"
WAR_ROOM = "war_room"
COORDINATOR = "coordinator"
NEWSROOM = "newsroom"
AUDITOR = "auditor"
ADMIN = "admin"
ANONYMOUS = "anonymous"
"""The role of a caller without credentials (not a role anyone is given)."""
LEDGER = "ledger"
"""The role of the decisions the ledger signs itself, with its verifier key (automatic acceptances)."""

ROLES = (VOLUNTEER, CONSTITUENCY_HEAD, WAR_ROOM, COORDINATOR, NEWSROOM, AUDITOR, ADMIN)
"""Every role a caller may have with credentials."""
KEY_ROLES = tuple(role for role in ROLES if role != VOLUNTEER)
"""The roles that may hold an API key (volunteers sign in with their own key)."""
EVERYONE = (ANONYMOUS, *ROLES)
"""Every caller, with or without credentials."""

LEVEL_ROLES = {1: VOLUNTEER, 2: CONSTITUENCY_HEAD, 3: WAR_ROOM}
"""The role of a member of the hierarchy by their level."""
SIGNED_IN_ROLES = tuple(LEVEL_ROLES.values())
"""Who signs in with their own key (heads and the war room may also hold API keys, which have no sessions)."""

VOLUNTEERS = (VOLUNTEER,)
"""Who submits a tally signed with their own key over the plain tally route."""
ADMIN_ONLY = (ADMIN,)
FEED_READERS = (NEWSROOM, WAR_ROOM, ADMIN)
"""Who reads the feed of entries."""
PEOPLE_MANAGERS = (ADMIN, COORDINATOR)
"""Who registers members and ends their sessions (a coordinator only in their organisations)."""
ASSIGNING_ROLES = (ADMIN, WAR_ROOM, COORDINATOR)
"""Who may assign areas; a coordinator only polling units to their own level-1 volunteers."""
DECIDERS = (CONSTITUENCY_HEAD, WAR_ROOM)
"""Who signs decisions and has a review queue."""
OVERSIGHT = (ADMIN, COORDINATOR, WAR_ROOM)
"""Who sees flagged members and the units no volunteer covers."""
RELAYING_ROLES = (COORDINATOR,)
"""Who relays a custodial volunteer's count."""
REPORTER_VIEWERS = (WAR_ROOM, ADMIN)
"""Who sees who reported any unit or uploaded any photo (a head: only in their constituencies)."""
REASON_READERS = (WAR_ROOM, ADMIN, AUDITOR)
"""Who reads why an entry was set aside (an error's text can quote the database)."""
