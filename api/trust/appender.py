"""Group commit for the decision chain: decisions that are ready while the chain is being written
share the next write transaction, so the chain's single lock is taken once per group, not once
per decision.

One writer thread per process writes whatever has queued since its last write, until the queue
is empty, then sleeps until the next decision arrives. The threads that decide hand their rows
over (:meth:`ChainAppender.submit`) and are free to decide the next request meanwhile: when they
wrote themselves, a worker's two threads never made a group of more than one. Each request gets
back its own rows, in the order it gave them, with their place in the chain.

With a :class:`api.trust.signing.Checkpointer`, the writer also signs the chain's newest state it wrote,
every N decisions or, while it waits for work, once M seconds have passed since the last one.
"""

from __future__ import annotations

import logging
import threading
from concurrent.futures import Future
from types import SimpleNamespace

from sqlalchemy.engine import Engine
from sqlalchemy.exc import DBAPIError, OperationalError

from api.db.engine import write_transaction
from api.trust import audit

log = logging.getLogger("xyd.api")


class ChainAppender:
    """Appends decision rows to the chain in groups (one per process, with its writer thread)."""

    def __init__(self, engine: Engine, checkpointer=None):
        self.engine, self.checkpointer = engine, checkpointer
        self._mutex = threading.Lock()
        self._arrived = threading.Condition(self._mutex)
        self._queue: list[tuple[list[dict], Future]] = []
        self._writer: threading.Thread | None = None
        self._closing = False

    @property
    def signer(self):
        """The key that signs the chain's checkpoints (and the answers' receipts), if any."""
        return None if self.checkpointer is None else self.checkpointer.signer

    def submit(self, rows: list[dict]) -> Future:
        """Queue ``rows`` for the chain; the future gives them back as stored (seq, created_at,
        prev_hash, hash), or the error their write met."""
        waiting: Future = Future()
        with self._mutex:
            if self._closing:
                raise RuntimeError("the chain appender is closed")
            if self._writer is None:
                writer = threading.Thread(target=self._write_until_closed, name="chain-writer", daemon=True)
                writer.start()
                self._writer = writer
            self._queue.append((rows, waiting))
            self._arrived.notify()
        return waiting

    def append(self, rows: list[dict]) -> list[SimpleNamespace]:
        """Append ``rows`` and wait until they are written; returns them as stored."""
        return self.submit(rows).result()

    def close(self, timeout: float | None = 30.0) -> None:
        """Write what has queued and sign its checkpoint, then stop the writer thread (waiting at
        most ``timeout`` seconds)."""
        with self._mutex:
            self._closing = True
            self._arrived.notify()
            writer = self._writer
        if writer is not None:
            writer.join(timeout)

    def _write_until_closed(self) -> None:
        while True:
            with self._mutex:
                while not self._queue and not self._closing:
                    wait = self.checkpointer.seconds_until_due() if self.checkpointer else None
                    if wait == 0.0 or not self._arrived.wait(wait):
                        break  # a checkpoint is due: sign it, then wait again
                batch, self._queue = self._queue, []
                closing = self._closing
            if not batch:
                if self.checkpointer is not None:
                    self._sign_checkpoint()
                if closing:
                    return
                continue
            # a request given up on before its write begins (its future cancelled) is not
            # written: no answer went out for it
            batch = [(rows, waiting) for rows, waiting in batch if waiting.set_running_or_notify_cancel()]
            if batch:
                self._write_batch(batch)

    def _write_batch(self, batch: list[tuple[list[dict], Future]]) -> None:
        try:
            stored = self._write([row for rows, _ in batch for row in rows])
        except BaseException as error:
            if len(batch) == 1 or _not_the_rows(error):
                for _, waiting in batch:
                    waiting.set_exception(error)
                return
            # one request's rows may be the cause: each is written on its own, so that only
            # the requests that really fail hear of it
            for rows, waiting in batch:
                try:
                    waiting.set_result(self._write(rows))
                except BaseException as own_error:
                    waiting.set_exception(own_error)
            return
        start = 0
        for rows, waiting in batch:
            waiting.set_result(stored[start:start + len(rows)])
            start += len(rows)

    def _write(self, rows: list[dict]) -> list[SimpleNamespace]:
        with write_transaction(self.engine) as connection:
            stored = audit.append(connection, rows)
        if self.checkpointer is not None:  # committed: the newest state is the chain's
            self._checkpoint(self.checkpointer.wrote, stored[-1].seq, stored[-1].hash)
        return stored

    def _sign_checkpoint(self) -> None:
        self._checkpoint(self.checkpointer.sign_now)

    @staticmethod
    def _checkpoint(action, *args) -> None:
        """Sign a checkpoint; a failure (a full disk, a database that cannot sync) is logged and
        tried again ``every_seconds`` later: the decisions themselves are recorded."""
        try:
            action(*args)
        except Exception as error:
            log.error("could not sign the chain's checkpoint, will try again: %s", error)


def _not_the_rows(error: BaseException) -> bool:
    """A lost or unreachable database, or a lock that took too long: every request of the group
    hears the same (a 503), and none is tried again on its own. A connection lost after the server
    committed would otherwise write the group twice, and each retry would wait out the same outage."""
    return isinstance(error, DBAPIError) and (error.connection_invalidated or isinstance(error, OperationalError))
