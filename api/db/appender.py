"""Group commit for the decision chain: requests that finish deciding at the same moment share
one write transaction, so the chain's single lock is taken once per group, not once per decision.

The first request to arrive becomes the writer; while it writes, later requests queue; when it
is done it writes everything that queued meanwhile, until the queue is empty. Each request gets
back its own rows, in the order it gave them, with their place in the chain.
"""

from __future__ import annotations

import threading
from concurrent.futures import Future
from types import SimpleNamespace

from sqlalchemy.engine import Engine

from api.db import audit
from api.db.engine import write_transaction


class ChainAppender:
    """Appends decision rows to the chain in groups (one per process)."""

    def __init__(self, engine: Engine):
        self.engine = engine
        self._mutex = threading.Lock()
        self._queue: list[tuple[list[dict], Future]] = []
        self._writing = False

    def append(self, rows: list[dict]) -> list[SimpleNamespace]:
        """Append ``rows``; returns them as stored (seq, created_at, prev_hash, hash)."""
        waiting: Future = Future()
        with self._mutex:
            self._queue.append((rows, waiting))
            leader = not self._writing
            self._writing = True
        if leader:
            self._write_until_empty()
        return waiting.result()

    def _write_until_empty(self) -> None:
        while True:
            with self._mutex:
                batch, self._queue = self._queue, []
                if not batch:
                    self._writing = False
                    return
            try:
                stored = self._write([row for rows, _ in batch for row in rows])
            except BaseException as error:
                if len(batch) == 1:
                    batch[0][1].set_exception(error)
                    continue
                # one request's rows may be the cause: each is written on its own, so that only
                # the requests that really fail hear of it (a database outage reaches them all)
                for rows, waiting in batch:
                    try:
                        waiting.set_result(self._write(rows))
                    except BaseException as own_error:
                        waiting.set_exception(own_error)
                continue
            start = 0
            for rows, waiting in batch:
                waiting.set_result(stored[start:start + len(rows)])
                start += len(rows)

    def _write(self, rows: list[dict]) -> list[SimpleNamespace]:
        with write_transaction(self.engine) as connection:
            return audit.append(connection, rows)
