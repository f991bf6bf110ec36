"""Handle rules: pseudonymous, and free of details that identify a young person.

A handle is public on the forums, so it must not carry an email address, a phone
number, a social-media handle or a link, and must not impersonate staff or a service.
"""

from __future__ import annotations

import re

from django.conf import settings

from .exceptions import InvalidHandle

HANDLE_RE = re.compile(r"^[A-Za-z0-9][A-Za-z0-9_.\-]{2,23}$")
EMAIL_RE = re.compile(r"[^@\s]+@[^@\s]+\.[a-z]{2,}", re.IGNORECASE)
# Seven or more digits, possibly separated, reads as a phone number (UK numbers have 10-11).
PHONE_RE = re.compile(r"(?:\d[\s.\-_]?){7,}")
LINK_RE = re.compile(r"(https?|www\.|\.com|\.co\.uk|\.net|\.org)", re.IGNORECASE)
SOCIAL_RE = re.compile(r"(insta|snap|tiktok|whatsapp|discord|telegram|kik)", re.IGNORECASE)
TOKEN_SPLIT_RE = re.compile(r"[^a-z]+")


def handle_check(handle: str) -> str:
    """Return the handle stripped, or raise InvalidHandle saying what to change."""
    handle = (handle or "").strip()
    if EMAIL_RE.search(handle) or "@" in handle:
        raise InvalidHandle("Handles can't contain an email address. Pick a nickname instead.")
    if PHONE_RE.search(handle):
        raise InvalidHandle("Handles can't contain a phone number. Pick a nickname instead.")
    if LINK_RE.search(handle) or SOCIAL_RE.search(handle):
        raise InvalidHandle("Handles can't contain links or social media names.")
    if not HANDLE_RE.match(handle):
        raise InvalidHandle(
            "Use 3-24 letters, numbers, dots, dashes or underscores, starting with a letter or number."
        )
    lowered = handle.lower()
    reserved = {word.lower() for word in settings.RESERVED_HANDLES}
    squashed = re.sub(r"[^a-z]", "", lowered)
    tokens = {t for t in TOKEN_SPLIT_RE.split(lowered) if t}
    if squashed in reserved or tokens & reserved:
        raise InvalidHandle("That handle is reserved. Pick another.")
    return handle
