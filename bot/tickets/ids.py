"""Short ticket ids a person can read out and type: six Crockford base-32 characters.

32**6 is about a billion ids, so a random one collides with an existing ticket only after
hundreds of thousands of tickets, and the store retries then. The alphabet has no I, L, O or U,
and reading normalises the look-alikes people type instead (o -> 0, i/l -> 1), case and dashes.
"""

from __future__ import annotations

import secrets

ALPHABET = "0123456789ABCDEFGHJKMNPQRSTVWXYZ"
LENGTH = 6
_LOOKALIKES = str.maketrans({"O": "0", "I": "1", "L": "1"})


def new_ticket_id() -> str:
    """A fresh random id (not guessable, so ids reveal nothing about how many tickets exist)."""
    return "".join(secrets.choice(ALPHABET) for _ in range(LENGTH))


def normalise_ticket_id(typed: str) -> str:
    """The canonical form of an id as a person typed it: ``#k7m-2qx`` -> ``K7M2QX``."""
    cleaned = typed.strip().lstrip("#").replace("-", "").replace(" ", "").upper()
    return cleaned.translate(_LOOKALIKES)


def looks_like_ticket_id(typed: str) -> bool:
    candidate = normalise_ticket_id(typed)
    return len(candidate) == LENGTH and all(char in ALPHABET for char in candidate)
