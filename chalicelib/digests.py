"""Digests and derived keys, in one place.

- `sha256_hex`: the unkeyed digest that stands in for random tokens in table keys (session
  cookies, sign-in states and browser bindings): the token has 256 random bits, so the
  digest alone cannot be reversed, and a copied table cannot be replayed as cookies.
- `derived_key`: one key per use, derived from the stage's root secret (HMAC_ROOT_KEY, or
  the SSM parameter HMAC_ROOT_KEY_PARAMETER): log stand-ins for emails and subjects,
  one-time-code digests, send-counter keys. A key for one use reveals nothing of another.
"""

from __future__ import annotations

import functools
import hashlib
import hmac

from chalicelib.secrets import hmac_root_key

LOG_STAND_INS = b"nrcme log stand-ins v1"
ONE_TIME_CODES = b"nrcme one-time codes v1"


def sha256_hex(value: str) -> str:
    return hashlib.sha256(value.encode()).hexdigest()


def derived_key(purpose: bytes) -> bytes:
    return _derive(hmac_root_key(), purpose)


@functools.lru_cache(maxsize=8)
def _derive(root: bytes, purpose: bytes) -> bytes:
    # Cached by root too, so a new root key (tests, a rotation) never meets an old key.
    return hmac.new(root, purpose, hashlib.sha256).digest()
