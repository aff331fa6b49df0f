"""Anchoring the workflow events' chain outside the database, as the decisions' is.

The decisions' chain is signed by the appender as it writes (:class:`api.trust.signing.Checkpointer`).
The workflow events' chain (objections filed, settled and republished, the banks' reviews) is
written a few times a day, by the service and by the command line alike: each write that appends
to it is followed by a checkpoint of its head, here, so that events deleted with the head moved
back, or rewritten and rehashed, are named by ``xyd audit verify`` against the signed file.
"""

from __future__ import annotations

import logging
from pathlib import Path

from sqlalchemy.orm import Session

from api.db.tables import SignedCheckpoint
from api.trust import audit
from api.trust.signing import Checkpoint, Keyring, append_checkpoint, sign_checkpoint
from features.home import checkpoints_file, keys_directory

log = logging.getLogger("xyd.api.anchor")


def sign_events(engine, home: Path, first_only: bool = False) -> Checkpoint | None:
    """Sign the events chain's head, if no checkpoint vouches for it yet, with the current key under
    ``home`` (made on first use), after making it durable; append the checkpoint to ``home``'s
    checkpoints file and record it in the database. A failure is logged, not raised: the write it
    follows has committed, and the next write's checkpoint covers it too.

    ``first_only`` (the service's start): sign only a chain never signed before, the events written
    before the chain was anchored (the reviews migration 0009 chained). Events a later signature
    missed are left for ``xyd audit verify`` to call not yet covered, never vouched for unseen."""
    try:
        with Session(engine) as session:
            size, head = audit.head(session, audit.EVENTS)
            record = session.get(SignedCheckpoint, audit.CHAIN_ROW[audit.EVENTS])
            signed = record.size if record is not None else 0
            origin = audit.origin(session, audit.EVENTS)
        if size <= signed or (first_only and signed):
            return None
        audit.make_durable(engine)
        checkpoint = sign_checkpoint(Keyring(keys_directory(home)).signer(), size, head, origin)
        append_checkpoint(checkpoints_file(home), checkpoint)
        audit.record_signed(engine, checkpoint, audit.EVENTS)
        return checkpoint
    except Exception as error:  # noqa: BLE001 (logged with its cause; the next write signs again)
        log.warning("the workflow events' head was not signed: %s", error)
        return None
