"""The service's clients (banks, regulators, operators) and their keys: made, found by key, listed,
disabled. Only a key's hash is kept."""

from __future__ import annotations

import hashlib
import secrets

from sqlalchemy import select
from sqlalchemy.orm import Session

from api.common.clock import now_iso
from api.db.tables import ApiClient

ROLES = ("bank", "regulator", "operator")
KEY_BYTES = 24


def key_hash(key: str) -> str:
    """Keys are random, so one SHA-256 is enough to store them safely."""
    return hashlib.sha256(key.encode("utf-8")).hexdigest()


def add_client(session: Session, name: str, role: str) -> tuple[ApiClient, str]:
    """A new client and its key (shown once; only the hash is kept)."""
    if role not in ROLES:
        raise ValueError(f"role must be one of {', '.join(ROLES)}; got {role!r}")
    if not name.strip():
        raise ValueError("a client needs a name")
    key = f"xyd_{role[:3]}_{secrets.token_urlsafe(KEY_BYTES)}"
    client = ApiClient(name=name.strip(), role=role, key_hash=key_hash(key), key_prefix=key[:12], disabled=False,
                       created_at=now_iso())
    session.add(client)
    session.flush()
    return client, key


def client_by_key(session: Session, key: str) -> ApiClient | None:
    return session.execute(select(ApiClient).where(ApiClient.key_hash == key_hash(key))).scalar_one_or_none()


def list_clients(session: Session) -> list[ApiClient]:
    return list(session.execute(select(ApiClient).order_by(ApiClient.id)).scalars())


def set_disabled(session: Session, client_id: int, disabled: bool) -> ApiClient | None:
    client = session.get(ApiClient, client_id)
    if client is not None:
        client.disabled = disabled
    return client
