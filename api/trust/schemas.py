"""The bodies of what makes a decision provable: receipts and the public keyring."""

from __future__ import annotations

from typing import Literal

from pydantic import BaseModel, ConfigDict, Field

from api import examples


class Receipt(BaseModel):
    """What the platform signed about a decision, for the bank to keep with the answer it came with
    and verify offline with the published public keys (``xyd audit verify-receipt``). The decision's
    audit-chain row hashes ``{"answer":A,"decided_at":T,"format":2,"record":R,"seq":N}`` (no spaces,
    keys in that order): ``A`` is the SHA-256 of the answer without ``hash``, ``receipt`` and
    ``decided_at``, canonicalised by RFC 8785 (JCS); ``T`` the answer's ``decided_at``; ``R`` this
    receipt's ``record``, the digest of the row as stored. ``hash`` is the SHA-256 of ``prev_hash``, a
    newline and that text; ``signature`` the Ed25519 signature, by key ``key_id``, of the text
    ``xyd-receipt/2\n{seq}\n{prev_hash}\n{hash}\n``. So every field the answer shows but its hash and
    receipt is covered, and the receipt repeats none of them."""

    model_config = ConfigDict(json_schema_extra={"examples": [examples.RECEIPT]})

    format: Literal["xyd-receipt/2"]
    seq: int = Field(description="The decision's position in the audit chain")
    prev_hash: str
    hash: str
    record: str = Field(description="SHA-256 of the decision as the platform stored it (its full reasons, the "
                                    "feature vector decided on, the enterprise's name): what the regulator reads")
    key_id: str = Field(description="The signing key's id in the platform's published keyring")
    signature: str = Field(description="Base64 Ed25519 signature")


class PublicKeyPublic(BaseModel):
    key_id: str = Field(description="The first 16 hex digits of the SHA-256 of the raw key")
    algorithm: Literal["Ed25519"]
    public_key: str = Field(description="The raw 32-byte key, base64")
    public_key_pem: str = Field(description="The same key as PEM (for `openssl pkeyutl -verify -rawin`)")
    created_at: str
    retired_at: str | None = Field(default=None, description="When a newer key replaced it (a service running then "
                                                              "signs with it until restarted); it verifies for good")


class KeyringPublic(BaseModel):
    """Every key that has signed receipts and checkpoints; ``current`` signs now."""

    model_config = ConfigDict(json_schema_extra={"examples": [examples.KEYRING]})

    format: Literal["xyd-keyring/1"]
    current: str | None
    keys: list[PublicKeyPublic]
