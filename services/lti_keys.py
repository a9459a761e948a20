"""Peerboard's own LTI signing keys: made, rotated, published, and kept encrypted.

The public halves are served at /lti/jwks.json (platforms verify our client assertions and
deep-linking answers with them). The private halves are stored encrypted with AES-GCM under
a key derived (HKDF) from PEERBOARD_SECRET_KEY, so a database dump alone signs nothing; a
key that the current secret cannot open (the secret changed) is skipped and a new one made.
"""

from __future__ import annotations

import base64
import secrets
from datetime import timedelta
from typing import Any

from cryptography.exceptions import InvalidTag
from cryptography.hazmat.primitives import hashes
from cryptography.hazmat.primitives.ciphers.aead import AESGCM
from cryptography.hazmat.primitives.kdf.hkdf import HKDF
from joserfc.jwk import RSAKey
from sqlalchemy.ext.asyncio import AsyncSession
from sqlmodel import col, or_, select

from services.models import LtiToolKey, utcnow

KEY_BITS = 2048
ALGORITHM = "RS256"
# Platforms cache our key set; a retired key stays published this long so that what was
# signed just before a rotation still verifies.
RETIRED_KEY_GRACE = timedelta(days=2)


def _aead(secret: str) -> AESGCM:
    hkdf = HKDF(algorithm=hashes.SHA256(), length=32, salt=b"peerboard-lti", info=b"tool-keys")
    return AESGCM(hkdf.derive(secret.encode()))


def _encrypt(secret: str, kid: str, plaintext: bytes) -> str:
    nonce = secrets.token_bytes(12)
    sealed = _aead(secret).encrypt(nonce, plaintext, kid.encode())
    return base64.urlsafe_b64encode(nonce + sealed).decode()


def _decrypt(secret: str, kid: str, token: str) -> bytes | None:
    raw = base64.urlsafe_b64decode(token.encode())
    try:
        return _aead(secret).decrypt(raw[:12], raw[12:], kid.encode())
    except InvalidTag:
        return None


async def create_key(session: AsyncSession, *, secret: str) -> LtiToolKey:
    """A new signing key; it becomes the one used for signing (the newest unretired)."""
    kid = secrets.token_urlsafe(12)
    key = RSAKey.generate_key(KEY_BITS, parameters={"kid": kid, "use": "sig", "alg": ALGORITHM})
    public = key.as_dict(private=False)
    pem = key.as_pem(private=True)
    row = LtiToolKey(
        kid=kid, public_jwk=dict(public), private_key_encrypted=_encrypt(secret, kid, pem)
    )
    session.add(row)
    await session.flush()
    return row


async def ensure_key(session: AsyncSession, *, secret: str) -> LtiToolKey:
    """The current signing key, made if there is none this secret can open."""
    found = await signing_key(session, secret=secret)
    if found is not None:
        return found[0]
    return await create_key(session, secret=secret)


async def rotate(session: AsyncSession, *, secret: str) -> LtiToolKey:
    """Retire every current key (still published for the grace period) and make a new one."""
    now = utcnow()
    rows = await session.execute(select(LtiToolKey).where(col(LtiToolKey.retired_at).is_(None)))
    for row in rows.scalars():
        row.retired_at = now
    await session.flush()
    return await create_key(session, secret=secret)


async def signing_key(session: AsyncSession, *, secret: str) -> tuple[LtiToolKey, RSAKey] | None:
    rows = await session.execute(
        select(LtiToolKey)
        .where(col(LtiToolKey.retired_at).is_(None))
        .order_by(col(LtiToolKey.id).desc())
    )
    for row in rows.scalars():
        pem = _decrypt(secret, row.kid, row.private_key_encrypted)
        if pem is not None:
            return row, RSAKey.import_key(pem, parameters={"kid": row.kid, "alg": ALGORITHM})
    return None


async def published_key_set(session: AsyncSession) -> dict[str, Any]:
    """The JWKS document: public keys only, current ones first."""
    cutoff = utcnow() - RETIRED_KEY_GRACE
    rows = await session.execute(
        select(LtiToolKey)
        .where(or_(col(LtiToolKey.retired_at).is_(None), col(LtiToolKey.retired_at) > cutoff))
        .order_by(col(LtiToolKey.retired_at).is_not(None), col(LtiToolKey.id).desc())
    )
    public_members = {"kty", "n", "e", "kid", "use", "alg"}
    return {
        "keys": [
            {k: v for k, v in row.public_jwk.items() if k in public_members}
            for row in rows.scalars()
        ]
    }
