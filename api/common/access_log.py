"""The access log: one JSON line per request, from every worker process into one file, rotated by size.

Lines are written in batches, at most ``FLUSH_SECONDS`` apart, by a thread of their own: a write
per request on the event loop cost a sixth of what deciding costs. A process killed outright
loses its last fraction of a second of lines; one stopped (or rotated) writes them first.

A line holds the time (UTC), the request id, the client id, the method, the route's template, the
status, the error code, the latency, the model version and the source address: never a key, a
body, a query string or a path's values (an enterprise's code travels in those). The workers append
whole lines to the same file (``O_APPEND``); the one that finds it over the size limit renames it
under a lock (``access.jsonl`` → ``access.jsonl.1`` → … → ``.N``, the oldest dropped) and each worker
reopens the new file when it sees the name point elsewhere (a rotated file may pass the limit by a
batch per worker; no line is lost or split). A log shipper (Filebeat, Vector, Fluent
Bit) tails ``access.jsonl`` and follows renames; every field is documented in the README.
"""

from __future__ import annotations

import datetime as dt
import fcntl
import json
import logging
import os
import sys
import threading
import time
from pathlib import Path

log = logging.getLogger("xyd.api")

FLUSH_SECONDS = 0.25
FIELDS = ("time", "request_id", "client_id", "method", "route", "status", "code", "latency_ms", "model_version",
          "address")


class AccessLog:
    """Appends one JSON line per request to ``path`` (``None``: standard output), rotating the file
    past ``max_bytes`` and keeping ``backups`` old ones."""

    def __init__(self, path: Path | None, max_bytes: int = 50 * 2**20, backups: int = 10):
        self.path, self.max_bytes, self.backups = path, max_bytes, backups
        self._mutex = threading.Lock()  # the open file and its rotation
        self._arrived = threading.Condition(threading.Lock())  # the lines waiting to be written
        self._pending: list[bytes] = []
        self._flusher: threading.Thread | None = None
        self._closing = False
        self._descriptor: int | None = None
        self._inode: int | None = None
        self._looked_at = 0.0
        self._failed = False

    @classmethod
    def configured(cls, setting: str, home: Path, max_bytes: int, backups: int) -> AccessLog | None:
        """The access log ``XYD_ACCESS_LOG`` names: a file (default ``XYD_HOME/logs/access.jsonl``),
        ``-`` for standard output, ``off`` for none."""
        if setting.strip().lower() == "off":
            return None
        if setting.strip() == "-":
            return cls(None)
        return cls(Path(setting) if setting.strip() else home / "logs" / "access.jsonl", max_bytes, backups)

    def write(self, **fields) -> None:
        """Log one request (the fields of :data:`FIELDS`; the time is added); written within
        :data:`FLUSH_SECONDS`. A log that cannot be written is reported once and fails no request."""
        record = {"time": dt.datetime.now(dt.timezone.utc).isoformat(timespec="milliseconds").replace("+00:00", "Z")}
        record.update((name, fields.get(name)) for name in FIELDS[1:])
        line = (json.dumps(record, ensure_ascii=False, separators=(",", ":")) + "\n").encode("utf-8")
        with self._arrived:
            self._pending.append(line)
            if self._flusher is None and not self._closing:
                self._flusher = threading.Thread(target=self._flush_until_closed, name="xyd-access-log", daemon=True)
                self._flusher.start()
            elif self._closing:  # after close (a request finishing late): written at once
                self._write(self._take())

    def flush(self) -> None:
        """Write every line logged so far."""
        with self._arrived:
            lines = self._take()
        self._write(lines)

    def close(self) -> None:
        """Write what is pending and stop the flushing thread."""
        with self._arrived:
            self._closing = True
            self._arrived.notify()
            flusher = self._flusher
        if flusher is not None:
            flusher.join(10)
        self.flush()
        with self._mutex:
            self._close()

    def _take(self) -> list[bytes]:
        lines, self._pending = self._pending, []
        return lines

    def _flush_until_closed(self) -> None:
        while True:
            with self._arrived:
                if not self._closing:
                    self._arrived.wait(FLUSH_SECONDS)
                lines, closing = self._take(), self._closing
            self._write(lines)
            if closing:
                return

    def _write(self, lines: list[bytes]) -> None:
        if not lines:
            return
        batch = b"".join(lines)  # whole lines in one append: workers' lines never interleave mid-line
        if self.path is None:
            sys.stdout.buffer.write(batch)
            sys.stdout.flush()
            return
        try:
            with self._mutex:
                descriptor = self._current()
                os.write(descriptor, batch)
                if os.fstat(descriptor).st_size > self.max_bytes:
                    self._rotate()
            self._failed = False
        except OSError:
            if not self._failed:
                log.exception("cannot write the access log %s", self.path)
            self._failed = True

    def _current(self) -> int:
        """The open file, reopened when another worker has rotated it away (or it was removed):
        looked for at most once a second; lines written meanwhile land in the renamed file, whole."""
        now = time.monotonic()
        if self._descriptor is not None and now - self._looked_at < 1.0:
            return self._descriptor
        self._looked_at = now
        try:
            inode = os.stat(self.path).st_ino
        except FileNotFoundError:
            inode = None
        if self._descriptor is None or inode != self._inode:
            self._close()
            self.path.parent.mkdir(parents=True, exist_ok=True)
            self._descriptor = os.open(self.path, os.O_WRONLY | os.O_APPEND | os.O_CREAT, 0o640)
            self._inode = os.fstat(self._descriptor).st_ino
        return self._descriptor

    def _rotate(self) -> None:
        lock = os.open(self.path.with_name(f".{self.path.name}.lock"), os.O_WRONLY | os.O_CREAT, 0o640)
        try:
            fcntl.flock(lock, fcntl.LOCK_EX)
            try:
                current = os.stat(self.path)
            except FileNotFoundError:
                current = None
            # another worker rotated while this one wrote: write to the new file from now on
            if current is None or current.st_ino != self._inode:
                self._close()
                return
            if current.st_size <= self.max_bytes:
                return
            for number in range(self.backups - 1, 0, -1):
                older = self.path.with_name(f"{self.path.name}.{number}")
                if older.exists():
                    os.replace(older, self.path.with_name(f"{self.path.name}.{number + 1}"))
            os.replace(self.path, self.path.with_name(f"{self.path.name}.1"))
            self._close()
        finally:
            os.close(lock)

    def _close(self) -> None:
        if self._descriptor is not None:
            os.close(self._descriptor)
        self._descriptor = self._inode = None

