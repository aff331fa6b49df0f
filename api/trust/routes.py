"""The platform's public signing keys, for banks to verify their receipts (no key needed: they are public)."""

from __future__ import annotations

import logging

from fastapi import APIRouter, Request

from api.common.errors import ApiError, responses
from api.trust.schemas import KeyringPublic

router = APIRouter(prefix="/v1/audit", tags=["audit"])
log = logging.getLogger("xyd.api")


@router.get("/keys", response_model=KeyringPublic, responses=responses(503))
def public_keys(request: Request) -> KeyringPublic:
    """The public keys that sign the receipts and the chain's checkpoints, current and retired.

    Fetch it once and keep it with the receipts: ``xyd audit verify-receipt answer.json --keys
    keys.json`` verifies offline. A retired key stays listed, so what it signed stays verifiable."""
    from api.trust.signing import Keyring, SignatureProblem

    keyring = Keyring(request.app.state.config.keys_directory)
    try:
        keys, current = keyring.public_keys(), keyring.current_id()
    except SignatureProblem as problem:
        log.error("the public keyring cannot be served: %s", problem)
        raise ApiError(503, "KEYRING_UNREADABLE", "the platform's keyring cannot be read now; ask the platform's "
                       "operator", "平台公钥文件暂时无法读取，请联系平台运营方") from None
    if not keys:
        raise ApiError(503, "NO_SIGNING_KEY", "the service has not made its signing key yet", "签名密钥尚未生成")
    return KeyringPublic(format="xyd-keyring/1", current=current,
                         keys=[key.as_json() for key in keys.values()])
