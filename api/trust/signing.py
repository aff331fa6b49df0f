"""Signatures that anchor the decision chain outside its own database.

Anyone who can write to the database can delete the newest decisions and move the chain's head
back: the chain then verifies, shorter. The service therefore signs, with an Ed25519 key kept
under ``XYD_HOME/keys/`` (0600, never in the database or a log):

- **checkpoints**, as Certificate Transparency's signed tree heads: a chain's origin (the database
  and the chain: the decisions', or the workflow events' with the banks' reviews), its size and head
  hash, at least every N decisions or M seconds (the events' after each write), appended to
  ``XYD_HOME/audit/checkpoints.jsonl`` (and exported for the regulator). :func:`api.trust.audit.verify`
  with checkpoints proves the database still holds every checkpointed row unchanged, and a checkpoint
  of another database's chain is refused by its origin;
- **receipts**: each answer carries its decision's place in the chain, the digest of the stored
  row and a signature; with the answer, a bank verifies it offline with the published public keys
  (:func:`verify_receipt`, ``xyd audit verify-receipt``).

Rotation makes a new key current and retires the old one: its private half is deleted, its
public half stays in the keyring, so every checkpoint and receipt it signed stays verifiable.
"""

from __future__ import annotations

import base64
import contextlib
import datetime as dt
import fcntl
import hashlib
import json
import logging
import os
import re
import threading
import time
from dataclasses import dataclass
from pathlib import Path

from api.common.clock import now_iso

CHECKPOINT_FORMAT = "xyd-checkpoint/2"
"""Checkpoints naming their chain's origin; format 1 (before origins) is still read, as the decisions'."""
CHECKPOINT_FORMATS = ("xyd-checkpoint/1", CHECKPOINT_FORMAT)
RECEIPT_FORMAT = "xyd-receipt/2"
"""Receipts that repeat nothing the answer shows; format 1 (the decision's content in full) is still read."""
RECEIPT_FORMATS = ("xyd-receipt/1", RECEIPT_FORMAT)
KEYRING_FORMAT = "xyd-keyring/1"
KEYRING_FILE = "public-keys.json"

log = logging.getLogger("xyd.api.signing")
_HEX64 = re.compile(r"[0-9a-f]{64}")
_ORIGIN = re.compile(r"[A-Za-z0-9._:/-]{1,200}")


class SignatureProblem(ValueError):
    """A keyring, checkpoint or receipt that cannot be read or does not verify (its words say where)."""


def _count(value) -> int:
    """A JSON integer of 1 or more, or ValueError (not a string of digits, a float or a boolean): a
    receipt's place and a checkpoint's size count the chain's rows, which start at 1 (nothing is
    signed over an empty chain)."""
    if not isinstance(value, int) or isinstance(value, bool) or value < 1:
        raise ValueError(f"{value!r} is not a whole number of rows (1 or more)")
    return value


def _b64(data: bytes) -> str:
    return base64.b64encode(data).decode("ascii")


@contextlib.contextmanager
def _locked(path: Path):
    """An exclusive lock on ``path`` (created if missing), across processes."""
    path.parent.mkdir(parents=True, exist_ok=True)
    with open(path, "a") as handle:
        fcntl.flock(handle, fcntl.LOCK_EX)
        try:
            yield
        finally:
            fcntl.flock(handle, fcntl.LOCK_UN)


@dataclass(frozen=True)
class PublicKey:
    """One Ed25519 public key of the keyring: its id (the first 16 hex digits of the SHA-256 of the
    raw key), the raw 32 bytes, when it was made and, once rotated out, when it was retired."""

    key_id: str
    raw: bytes
    created_at: str
    retired_at: str | None = None

    def verifies(self, signature_b64: str, message: bytes) -> bool:
        """Whether ``signature_b64`` is this key's signature of ``message``."""
        from cryptography.exceptions import InvalidSignature
        from cryptography.hazmat.primitives.asymmetric.ed25519 import Ed25519PublicKey

        try:
            signature = base64.b64decode(signature_b64, validate=True)
            if _b64(signature) != signature_b64:  # one spelling only: base64's unused low bits may not vary
                return False
            Ed25519PublicKey.from_public_bytes(self.raw).verify(signature, message)
        except (InvalidSignature, ValueError, TypeError):
            return False
        return True

    def as_json(self) -> dict:
        from cryptography.hazmat.primitives import serialization
        from cryptography.hazmat.primitives.asymmetric.ed25519 import Ed25519PublicKey

        pem = Ed25519PublicKey.from_public_bytes(self.raw).public_bytes(
            serialization.Encoding.PEM, serialization.PublicFormat.SubjectPublicKeyInfo).decode("ascii")
        return {"key_id": self.key_id, "algorithm": "Ed25519", "public_key": _b64(self.raw), "public_key_pem": pem,
                "created_at": self.created_at, "retired_at": self.retired_at}


def key_id(raw_public: bytes) -> str:
    """A public key's id: the first 16 hex digits of the SHA-256 of its raw 32 bytes."""
    return hashlib.sha256(raw_public).hexdigest()[:16]


class Signer:
    """The current private key, held in memory by the process that signs."""

    def __init__(self, private_key, created_at: str):
        from cryptography.hazmat.primitives import serialization

        self._private = private_key
        raw = private_key.public_key().public_bytes(serialization.Encoding.Raw, serialization.PublicFormat.Raw)
        self.public = PublicKey(key_id(raw), raw, created_at)
        self.key_id = self.public.key_id

    def sign(self, message: bytes) -> str:
        """The base64 Ed25519 signature of ``message``."""
        return _b64(self._private.sign(message))

    def __repr__(self) -> str:  # never the key itself, whatever prints this object
        return f"Signer(key_id={self.key_id!r})"


def read_keyring(path: Path) -> dict[str, PublicKey]:
    """The public keys of a keyring file (``XYD_HOME/keys/public-keys.json`` or the copy the platform
    published), by key id; a file that cannot be read is a :class:`SignatureProblem` naming it."""
    return _keys_of(_load_keyring(path), path)


def _load_keyring(path: Path) -> dict:
    try:
        document = json.loads(Path(path).read_text(encoding="utf-8"))
    except FileNotFoundError:
        raise SignatureProblem(f"{path}: no such keyring file") from None
    except (OSError, ValueError, RecursionError) as error:
        raise SignatureProblem(f"{path}: not a keyring ({error})") from None
    if not isinstance(document, dict) or not isinstance(document.get("keys"), list):
        raise SignatureProblem(f"{path}: not a keyring (no list of keys)")
    return document


def _keys_of(document: dict, path: Path) -> dict[str, PublicKey]:
    """The keyring document's keys, each checked to be the Ed25519 key its id names."""
    try:
        keys = {}
        for entry in document["keys"]:
            raw = base64.b64decode(entry["public_key"], validate=True)
            if len(raw) != 32 or key_id(raw) != entry["key_id"]:
                raise ValueError(f"key {entry.get('key_id')!r} is not the Ed25519 key its id names")
            keys[entry["key_id"]] = PublicKey(entry["key_id"], raw, entry["created_at"], entry.get("retired_at"))
    except (ValueError, KeyError, TypeError, AttributeError) as error:
        raise SignatureProblem(f"{path}: not a keyring ({error})") from None
    return keys


class Keyring:
    """The signing keys under ``XYD_HOME/keys/``: ``signing-<key id>.pem`` (the current private key,
    0600, in a 0700 directory) and ``public-keys.json`` (every public key ever current, with the
    current one named: the file to publish)."""

    def __init__(self, directory: Path):
        self.directory = Path(directory)
        self.public_file = self.directory / KEYRING_FILE
        self._lock_file = self.directory / ".lock"
        self._seen: tuple[int, int, int] | None = None  # the keyring file's (inode, size, mtime) last read by follow()

    def _document(self) -> dict:
        """The keyring file as written (checked as :func:`read_keyring` checks a published copy)."""
        if not self.public_file.exists():
            return {"format": KEYRING_FORMAT, "current": None, "keys": []}
        document = _load_keyring(self.public_file)
        keys = _keys_of(document, self.public_file)
        current = document.get("current")
        if current is not None and (not isinstance(current, str) or current not in keys):
            raise SignatureProblem(f"{self.public_file}: the current key {current!r} is not in the keyring")
        return document

    def _private_file(self, key: str) -> Path:
        return self.directory / f"signing-{key}.pem"

    def _write_document(self, document: dict) -> None:
        temporary = self.public_file.with_suffix(".tmp")
        temporary.write_text(json.dumps(document, ensure_ascii=False, indent=2) + "\n", encoding="utf-8")
        os.chmod(temporary, 0o644)  # public by design: banks and the regulator are given it
        os.replace(temporary, self.public_file)

    def public_keys(self) -> dict[str, PublicKey]:
        """Every public key, current and retired, by id (empty before the first key is made)."""
        return read_keyring(self.public_file) if self.public_file.exists() else {}

    def current_id(self) -> str | None:
        return self._document().get("current")

    def generate(self) -> PublicKey:
        """Make a new key and make it current (a rotation when there was one): the old key's
        private file is deleted, its public key kept with the time it was retired."""
        from cryptography.hazmat.primitives import serialization
        from cryptography.hazmat.primitives.asymmetric.ed25519 import Ed25519PrivateKey

        self.directory.mkdir(parents=True, exist_ok=True)
        os.chmod(self.directory, 0o700)
        with _locked(self._lock_file):
            document = self._document()
            private = Ed25519PrivateKey.generate()
            signer = Signer(private, now_iso())
            pem = private.private_bytes(serialization.Encoding.PEM, serialization.PrivateFormat.PKCS8,
                                        serialization.NoEncryption())
            descriptor = os.open(self._private_file(signer.key_id), os.O_CREAT | os.O_EXCL | os.O_WRONLY, 0o600)
            with os.fdopen(descriptor, "wb") as handle:
                handle.write(pem)
            previous = document.get("current")
            for entry in document["keys"]:
                if entry["key_id"] == previous and entry.get("retired_at") is None:
                    entry["retired_at"] = signer.public.created_at
            document["keys"].append(signer.public.as_json())
            document["current"] = signer.key_id
            self._write_document(document)
            if previous:
                self._private_file(previous).unlink(missing_ok=True)
        return signer.public

    def follow(self, signer: Signer) -> Signer:
        """``signer``, or the key that has replaced it when the keyring was rotated since (by
        `xyd audit keys rotate`, in another process): a running service signs with the new key from
        its next signature on. Costs a stat of the keyring file; the file is read only when it changed."""
        try:
            stat = self.public_file.stat()
        except FileNotFoundError:
            return signer
        seen = (stat.st_ino, stat.st_size, stat.st_mtime_ns)
        if seen == self._seen:
            return signer
        current = self.current_id()
        if current is None or current == signer.key_id:
            self._seen = seen
            return signer
        replaced = self.signer(create=False)
        self._seen = seen
        log.info("signing key %s was retired: signing with %s from now on", signer.key_id, replaced.key_id)
        return replaced

    def check_signs_with_a_listed_key(self) -> None:
        """Refuse (:class:`SignatureProblem`) a keyring that does not name, as its current key, the
        private key beside it that the service signs with: a ``public-keys.json`` replaced, or edited
        to list a key of someone else's, would otherwise vouch for checkpoints that key signed."""
        from cryptography.hazmat.primitives import serialization

        listed, current = self.public_keys(), self.current_id()
        for private_file in sorted(self.directory.glob("signing-*.pem")):
            try:
                private = serialization.load_pem_private_key(private_file.read_bytes(), password=None)
                raw = private.public_key().public_bytes(serialization.Encoding.Raw, serialization.PublicFormat.Raw)
            except (OSError, ValueError, TypeError, AttributeError) as error:
                raise SignatureProblem(f"{private_file} is not an Ed25519 private key ({error})") from None
            signing = key_id(raw)
            if signing not in listed or listed[signing].raw != raw:
                raise SignatureProblem(f"{self.public_file} does not hold the key the service signs with "
                                       f"({private_file.name}, key {signing}): the keyring was replaced or edited")
            if signing != current:
                raise SignatureProblem(f"{self.public_file} names {current} as current, but the service signs with "
                                       f"{signing} ({private_file.name}): the keyring was replaced or edited")

    def signer(self, create: bool = True) -> Signer:
        """The current key, to sign with; made first when there is none and ``create`` is set
        (several processes starting at once make one key between them)."""
        from cryptography.hazmat.primitives import serialization

        with _locked(self._lock_file):
            current = self._document().get("current")
        if current is None:
            if not create:
                raise SignatureProblem(f"no signing key under {self.directory}: run `xyd audit keys rotate`")
            with _locked(self.directory / ".create"):
                current = self._document().get("current") or self.generate().key_id
        private_file = self._private_file(current)
        created = next(e["created_at"] for e in self._document()["keys"] if e["key_id"] == current)
        try:
            signer = Signer(serialization.load_pem_private_key(private_file.read_bytes(), password=None), created)
        except FileNotFoundError:
            raise SignatureProblem(f"the current key {current} has no private file {private_file}: restore it "
                                   "from backup or run `xyd audit keys rotate`") from None
        except (ValueError, TypeError, AttributeError) as error:
            raise SignatureProblem(f"{private_file} is not an Ed25519 private key ({error}): restore it from "
                                   "backup or run `xyd audit keys rotate`") from None
        if signer.key_id != current:
            raise SignatureProblem(f"{private_file} does not hold the key {current} the keyring names as current")
        return signer


# --- checkpoints --------------------------------------------------------------------------------

@dataclass(frozen=True)
class Checkpoint:
    """A signed statement: the chain ``origin`` held ``size`` rows, the last one hashing to ``head``,
    at ``time``. ``origin`` is None for a checkpoint of format 1, signed before chains were named
    (it spoke of the decisions' chain)."""

    size: int
    head: str
    time: str
    key_id: str
    signature: str
    line: int = 0  # where it was read from, for the messages
    origin: str | None = None

    @staticmethod
    def message(size: int, head: str, time: str, origin: str | None = None) -> bytes:
        if origin is None:
            return f"{CHECKPOINT_FORMATS[0]}\n{size}\n{head}\n{time}\n".encode("utf-8")
        return f"{CHECKPOINT_FORMAT}\n{origin}\n{size}\n{head}\n{time}\n".encode("utf-8")

    def as_json(self) -> dict:
        named = {} if self.origin is None else {"origin": self.origin}  # format 1 named no chain
        return {"format": CHECKPOINT_FORMATS[0] if self.origin is None else CHECKPOINT_FORMAT, **named,
                "size": self.size, "head": self.head, "time": self.time, "key_id": self.key_id,
                "signature": self.signature}

    def describe(self) -> str:
        return f"the checkpoint of {self.time} (line {self.line}, key {self.key_id})"


def sign_checkpoint(signer: Signer, size: int, head: str, origin: str) -> Checkpoint:
    """A checkpoint of the chain ``origin`` at ``size`` rows ending in ``head``, signed now."""
    stamp = now_iso()
    return Checkpoint(size, head, stamp, signer.key_id, signer.sign(Checkpoint.message(size, head, stamp, origin)),
                      origin=origin)


def append_checkpoint(path: Path, checkpoint: Checkpoint) -> None:
    """Add ``checkpoint`` to the append-only file at ``path``, one JSON line, under a lock (several
    worker processes append to the same file)."""
    path.parent.mkdir(parents=True, exist_ok=True)
    line = (json.dumps(checkpoint.as_json(), separators=(",", ":")) + "\n").encode("ascii")
    descriptor = os.open(path, os.O_WRONLY | os.O_APPEND | os.O_CREAT, 0o644)
    try:
        fcntl.flock(descriptor, fcntl.LOCK_EX)
        before = os.fstat(descriptor).st_size
        if os.write(descriptor, line) != len(line):  # a full disk: a part of a line would spoil the file
            os.ftruncate(descriptor, before)
            raise OSError(f"{path}: the checkpoint was not written whole (is the disk full?)")
    finally:
        os.close(descriptor)  # closing releases the lock


def read_checkpoints(path: Path, keys: dict[str, PublicKey]) -> list[Checkpoint]:
    """Every checkpoint of the file at ``path``, each signature checked against ``keys``; a line
    that is not a checkpoint, names an unknown key or does not verify is a
    :class:`SignatureProblem` naming the file and the line (the file itself has been tampered with)."""
    checkpoints = []
    try:
        text = Path(path).read_text(encoding="utf-8")
    except (OSError, UnicodeDecodeError) as error:
        raise SignatureProblem(f"{path}: cannot read the checkpoints ({error})") from None
    for number, line in enumerate(text.splitlines(), start=1):
        if not line.strip():
            continue
        try:
            entry = json.loads(line)
            if entry.get("format") not in CHECKPOINT_FORMATS:
                raise ValueError(f"format {entry.get('format')!r}, not one of {', '.join(CHECKPOINT_FORMATS)}")
            legacy = entry["format"] == CHECKPOINT_FORMATS[0]  # format 1 named no chain
            origin = None if legacy else entry["origin"]
            if not legacy and (not isinstance(origin, str) or not _ORIGIN.fullmatch(origin)):
                raise ValueError(f"its origin {origin!r} is not a chain's name")
            checkpoint = Checkpoint(_count(entry["size"]), str(entry["head"]), str(entry["time"]),
                                    str(entry["key_id"]), str(entry["signature"]), number, origin)
            if not _HEX64.fullmatch(checkpoint.head):
                raise ValueError("its head is not 64 hexadecimal digits")
        except (ValueError, KeyError, TypeError, AttributeError, RecursionError) as error:
            raise SignatureProblem(f"{path}, line {number}: not a checkpoint ({error})") from None
        key = keys.get(checkpoint.key_id)
        if key is None:
            raise SignatureProblem(f"{path}, line {number}: signed by key {checkpoint.key_id}, which the keyring "
                                   "does not hold")
        if not key.verifies(checkpoint.signature, Checkpoint.message(checkpoint.size, checkpoint.head, checkpoint.time,
                                                                      checkpoint.origin)):
            raise SignatureProblem(f"{path}, line {number}: the signature does not verify with key "
                                   f"{checkpoint.key_id}: the line was altered")
        try:
            _signed_while_current(key, checkpoint.time, "the checkpoint")
        except SignatureProblem as error:
            raise SignatureProblem(f"{path}, line {number}: {error}") from None
        checkpoints.append(checkpoint)
    return checkpoints


ROTATION_GRACE_SECONDS = 60
"""How long after a key's retirement a signature by it is still believed: one already under way
when the keyring was rotated (each worker takes the new key at its next signature)."""


def _signed_while_current(key: PublicKey, signed_at: str, what: str) -> None:
    """Refuse what ``key`` signed at ``signed_at`` (UTC, as stored) more than the grace after its
    retirement: a retired key's private half is deleted, so a later signature means a copy of it
    survived, or a clock was wrong."""
    if key.retired_at is None:
        return
    try:
        signed = dt.datetime.fromisoformat(signed_at.replace("Z", "+00:00"))
        retired = dt.datetime.fromisoformat(key.retired_at.replace("Z", "+00:00"))
    except ValueError:
        raise SignatureProblem(f"{what} states no time it was signed ({signed_at!r})") from None
    if signed > retired + dt.timedelta(seconds=ROTATION_GRACE_SECONDS):
        raise SignatureProblem(f"{what} was signed at {signed_at} by key {key.key_id}, which was retired at "
                               f"{key.retired_at}: a retired key signs nothing")


class Checkpointer:
    """Signs the chain's newest state this process wrote, at least every ``every_decisions`` decisions
    or ``every_seconds`` seconds while decisions arrive (the chain appender's writer thread calls it),
    naming the chain by its ``origin`` (:func:`api.trust.audit.origin`).

    ``make_durable`` (:func:`api.trust.audit.make_durable`) is called before each signature: the chain
    commits without waiting for the disk, and a checkpoint must never vouch for decisions that a
    power cut could still take away (verify would then report them deleted, for good)."""

    def __init__(self, signer: Signer, path: Path, every_decisions: int = 1_000, every_seconds: float = 10.0,
                 make_durable=None, keyring: Keyring | None = None, record_signed=None, *, origin: str):
        self._signer, self.path, self.make_durable, self.origin = signer, Path(path), make_durable, origin
        self.keyring, self.record_signed = keyring, record_signed
        self.every_decisions, self.every_seconds = every_decisions, every_seconds
        self._mutex = threading.Lock()
        self._newest: tuple[int, str] | None = None
        self._signed_size = 0
        self._signed_at = time.monotonic()

    @property
    def signer(self) -> Signer:
        """The key to sign with now: with a ``keyring``, the current one even after a rotation made
        while this process runs (:meth:`Keyring.follow`)."""
        if self.keyring is not None:
            self._signer = self.keyring.follow(self._signer)
        return self._signer

    def wrote(self, size: int, head: str) -> None:
        """The chain now holds ``size`` decisions ending in ``head`` (written by this process);
        signs at once when ``every_decisions`` or ``every_seconds`` have passed since the last checkpoint."""
        with self._mutex:
            if self._newest is None or size > self._newest[0]:
                self._newest = (size, head)
            due = (size - self._signed_size >= self.every_decisions
                   or time.monotonic() - self._signed_at >= self.every_seconds)
        if due:
            self.sign_now()

    def seconds_until_due(self) -> float | None:
        """How long the writer may sleep before a checkpoint is due (None: nothing new to sign)."""
        with self._mutex:
            if self._newest is None or self._newest[0] <= self._signed_size:
                return None
            return max(0.0, self._signed_at + self.every_seconds - time.monotonic())

    def sign_now(self) -> Checkpoint | None:
        """Make the newest state not yet signed durable, sign it and append it, if there is one.
        A failure (the database, a full disk) is raised, and the next try waits ``every_seconds``."""
        with self._mutex:
            if self._newest is None or self._newest[0] <= self._signed_size:
                return None
            size, head = self._newest
            try:
                if self.make_durable is not None:
                    self.make_durable()
                checkpoint = sign_checkpoint(self.signer, size, head, self.origin)
                append_checkpoint(self.path, checkpoint)
            except BaseException:
                self._signed_at = time.monotonic()  # not again at once: a writer spinning on a full disk helps no one
                raise
            self._signed_size, self._signed_at = size, time.monotonic()
            if self.record_signed is not None:
                try:  # the chain's own record of it (api.trust.audit.record_signed), which verify holds the file to
                    self.record_signed(checkpoint)
                except Exception as error:  # the file holds the checkpoint: the record catches up at the next one
                    log.warning("checkpoint of %s rows signed, but not recorded in the database: %s", size, error)
            return checkpoint


# --- receipts -----------------------------------------------------------------------------------

def _receipt_message(receipt_format: str, seq: int, prev_hash: str, hash_: str) -> bytes:
    return f"{receipt_format}\n{seq}\n{prev_hash}\n{hash_}\n".encode("utf-8")


UNSIGNED_ANSWER_FIELDS = ("hash", "receipt", "decided_at")
"""What an answer's digest leaves out: its hash and receipt (made from the digest), and its time
(taken under the chain's lock, after the digest: the content holds it on its own)."""


def answer_digest(answer: dict) -> str:
    """The SHA-256 (hex) of an answer as the bank received it (parsed JSON), without
    :data:`UNSIGNED_ANSWER_FIELDS`, canonicalised by RFC 8785 (:func:`canonical_json`). Raises
    ``ValueError`` for what JSON cannot hold (a number beyond 2**53, NaN)."""
    return hashlib.sha256(canonical_json({k: v for k, v in answer.items() if k not in UNSIGNED_ANSWER_FIELDS})
                          ).hexdigest()


_SAFE_INTEGER = 2 ** 53 - 1


def _plain(value):
    """``value`` with every whole float as an int, when Python's ``json`` then writes it as RFC 8785
    does; raises ``_NotPlain`` where it might not (a float Python writes with an exponent, a number
    JCS refuses, a key beyond ASCII: Python sorts keys by code point, JCS by UTF-16 unit)."""
    if isinstance(value, dict):
        out = {}
        for key, inner in value.items():
            if not isinstance(key, str) or not key.isascii():
                raise _NotPlain
            out[key] = _plain(inner)
        return out
    if isinstance(value, list):
        return [_plain(inner) for inner in value]
    if isinstance(value, bool) or value is None or isinstance(value, str):
        return value
    if isinstance(value, int):
        if abs(value) > _SAFE_INTEGER:
            raise _NotPlain
        return value
    if isinstance(value, float):
        if value.is_integer():
            if abs(value) <= _SAFE_INTEGER:
                return int(value)
            raise _NotPlain  # from 2**53 to 1e16 Python writes "9007199254740992.0", ECMAScript the digits alone
        if value != value or "e" in repr(value) or "n" in repr(value):  # NaN, inf, exponent
            raise _NotPlain
        return value
    raise _NotPlain


class _NotPlain(Exception):
    pass


def canonical_json(value) -> bytes:
    """``value`` (parsed JSON) canonicalised by RFC 8785, the JSON Canonicalization Scheme: keys
    sorted, no spaces, text as UTF-8, numbers as ECMAScript writes them (80000 and 80000.0 are one
    number); libraries exist for most languages, so a bank can hash an answer as the platform did.
    A decision's answer takes the quick way (Python's ``json``, which writes such documents the
    same); anything else the ``rfc8785`` library's. Raises ``ValueError`` for what JCS cannot hold."""
    try:
        return json.dumps(_plain(value), sort_keys=True, ensure_ascii=False, separators=(",", ":"),
                          allow_nan=False).encode("utf-8")
    except _NotPlain:
        pass
    except UnicodeEncodeError:  # a lone surrogate ("\\ud800" parses as one): no UTF-8 spells it
        raise ValueError("it cannot be canonicalised (its text is not Unicode)") from None
    import rfc8785

    try:
        return rfc8785.dumps(value)
    except rfc8785.CanonicalizationError as error:
        raise ValueError(f"it cannot be canonicalised ({error})") from None
    except UnicodeEncodeError:
        raise ValueError("it cannot be canonicalised (its text is not Unicode)") from None


def make_receipt(signer: Signer, seq: int, prev_hash: str, hash_: str, record: str) -> dict:
    """A decision's receipt (format 2): its place in the chain, the digest of the stored row
    (``record``) and the signature of that place. With the answer it came with, a bank rebuilds
    the row's content (:func:`api.trust.audit.content_v2`) and checks it offline
    (:func:`verify_receipt`); it repeats nothing the answer shows."""
    return {"format": RECEIPT_FORMAT, "seq": seq, "prev_hash": prev_hash, "hash": hash_, "record": record,
            "key_id": signer.key_id, "signature": signer.sign(_receipt_message(RECEIPT_FORMAT, seq, prev_hash, hash_))}


# the answer's fields that a format-1 receipt's content holds (answer field → content field)
ANSWER_FIELDS = {"request_id": "request_id", "uscc": "uscc", "pd": "pd", "score": "score", "grade": "grade",
                 "decision": "decision", "limit_yuan": "limit_yuan", "requested_amount": "requested_amount",
                 "product": "product", "client_id": "client_id", "authorization_id": "authorization_id",
                 "decided_at": "created_at", "hash": None}
VERSION_FIELDS = ("model_version", "policy_version", "feature_set_version", "profile_as_of")


def verify_receipt(receipt: dict, keys: dict[str, PublicKey], answer: dict | None = None) -> dict:
    """Check a receipt offline: the key signed its place (seq, previous hash, hash), and the
    decision hashes, after the previous hash, to the signed hash. Returns the decision as signed;
    raises :class:`SignatureProblem` naming the first thing that does not hold.

    A receipt of format 2 (``xyd-receipt/2``) vouches for the ``answer`` it came with (required):
    every field it shows but its hash, receipt and time is covered by one digest
    (:func:`answer_digest`), its time and the stored row's digest by the content; a signed field
    missing from the answer is named, a changed one is found (not named: the receipt holds no value
    to compare it with). A receipt of format 1 carries the decision's content; with ``answer``, the
    answer's fields are held to it one by one."""
    try:
        receipt_format = receipt.get("format")
        if receipt_format not in RECEIPT_FORMATS:
            raise SignatureProblem(f"not a receipt: format {receipt_format!r}, not one of {', '.join(RECEIPT_FORMATS)}")
        seq, prev_hash, hash_ = _count(receipt["seq"]), receipt["prev_hash"], receipt["hash"]
        key_name, signature = receipt["key_id"], receipt["signature"]
        hashes = [("prev_hash", prev_hash), ("hash", hash_)]
        if receipt_format == RECEIPT_FORMAT:
            hashes.append(("record", receipt["record"]))
        else:
            content = receipt["content"]
            if not isinstance(content, str):
                raise ValueError("its content must be text")
        for name, value in hashes:
            if not isinstance(value, str) or not _HEX64.fullmatch(value):
                raise ValueError(f"its {name} is not 64 hexadecimal digits")
        if not all(isinstance(value, str) for value in (signature, key_name)):
            raise ValueError("its key id and signature must be text")
    except (KeyError, TypeError, ValueError, AttributeError) as error:
        raise SignatureProblem(f"not a receipt: {error}") from None
    key = keys.get(key_name)
    if key is None:
        raise SignatureProblem(f"signed by key {key_name}, which the keyring does not hold")
    if not key.verifies(signature, _receipt_message(receipt_format, seq, prev_hash, hash_)):
        raise SignatureProblem(f"the signature does not verify with key {key_name}: the seq, previous hash or "
                               "hash was changed")
    if receipt_format == RECEIPT_FORMAT:
        return _verify_answer(receipt, key, answer)
    from api.trust.audit import content_hash

    if content_hash(prev_hash, content) != hash_:
        raise SignatureProblem("the content does not hash to the signed hash: the decision was changed")
    try:
        signed = json.loads(content)
        if not isinstance(signed, dict):
            raise ValueError("it is not a JSON object")
    except (ValueError, RecursionError) as error:
        raise SignatureProblem(f"the signed content is not a decision ({error})") from None
    if signed.get("seq") != seq:
        raise SignatureProblem(f"the content says row {signed.get('seq')}, the signature row {seq}")
    _signed_while_current(key, str(signed.get("created_at")), "the receipt")
    if answer is not None:
        try:
            _same_answer(answer, signed, hash_)
        except SignatureProblem:  # a field that is not the signed one: its own message names it
            raise
        except (AttributeError, TypeError, ValueError, KeyError, RecursionError) as error:
            raise SignatureProblem(f"the answer is not shaped as a decision ({error})") from None
    return signed


def _verify_answer(receipt: dict, key: PublicKey, answer: dict | None) -> dict:
    """The rest of a format-2 receipt's check, once its signature holds: the answer it came with
    rebuilds the content the chain hashed. Returns the answer (without its receipt) and its row."""
    from api.trust.audit import content_hash, content_v2

    if answer is None:
        raise SignatureProblem(f"a receipt of format {RECEIPT_FORMAT} vouches for the answer it came with: give the "
                               "whole answer (its signature alone holds: row "
                               f"{receipt['seq']} of the chain, hash {receipt['hash'][:12]}…)")
    if not isinstance(answer, dict):
        raise SignatureProblem("the answer is not shaped as a decision (it is not a JSON object)")
    missing = _missing_fields(answer)
    if missing:
        raise SignatureProblem(f"the answer lacks the signed field{'s' if len(missing) > 1 else ''} "
                               f"{', '.join(missing)}: it is not the whole answer the receipt came with")
    if answer["hash"] != receipt["hash"]:
        raise SignatureProblem(f"the answer's hash is {answer['hash']!r}, the signed one {receipt['hash']!r}: "
                               "the receipt is another decision's")
    try:
        digest = answer_digest(answer)
    except (ValueError, TypeError, RecursionError) as error:
        raise SignatureProblem(f"the answer is not shaped as a decision ({error})") from None
    content = content_v2(receipt["seq"], answer["decided_at"], digest, receipt["record"])
    if content_hash(receipt["prev_hash"], content) != receipt["hash"]:
        raise SignatureProblem("the answer is not the one signed: a field it shows (every one but hash and receipt is "
                               "signed: decision, grade, limit, PD, name, reasons, versions, time, ...) was changed, "
                               "added or removed after it was sent")
    _signed_while_current(key, str(answer["decided_at"]), "the receipt")
    return {**{k: v for k, v in answer.items() if k != "receipt"}, "seq": receipt["seq"]}


def _missing_fields(answer: dict) -> list[str]:
    """The signed fields an answer lacks (a version shown as null counts as missing)."""
    missing = [field for field in (*ANSWER_FIELDS, "versions", "reasons") if field not in answer]
    versions = answer.get("versions") or {}
    if not isinstance(versions, dict):
        raise SignatureProblem("the answer is not shaped as a decision (its versions are not a mapping)")
    if "versions" in answer:
        missing += [f"versions.{field}" for field in VERSION_FIELDS if versions.get(field) is None]
    return missing


def _same_answer(answer: dict, signed: dict, hash_: str) -> None:
    """Raise :class:`SignatureProblem` naming the signed fields the answer lacks, or the first field
    of the answer that is not the signed one (a format-1 receipt's check)."""
    missing = _missing_fields(answer)
    if missing:
        raise SignatureProblem(f"the answer lacks the signed field{'s' if len(missing) > 1 else ''} "
                               f"{', '.join(missing)}: it is not the whole answer the receipt came with")
    for field, source in ANSWER_FIELDS.items():  # every one is there (missing above)
        expected = hash_ if source is None else signed.get(source)
        if answer[field] != expected:
            raise SignatureProblem(f"the answer's {field} is {answer[field]!r}, the signed decision's {expected!r}")
    for field in VERSION_FIELDS:
        given = answer["versions"][field]
        if str(given) != str(signed.get(field)):
            raise SignatureProblem(f"the answer's {field} is {given!r}, the signed decision's {signed.get(field)!r}")
    if not _same_reasons(answer["reasons"], json.loads(signed["reasons"])):
        raise SignatureProblem("the answer's reasons differ from the signed decision's")


def _same_reasons(given, signed) -> bool:
    """Whether every value the answer's reasons show is the signed one. The answer shows a part of
    the signed reasons (the regulator's page reads the rest: the computation, the feature vector),
    and the schema's defaults add fields as null."""
    if isinstance(signed, dict):
        return isinstance(given, dict) and all(_same_reasons(v, signed[k]) if k in signed else v is None
                                               for k, v in given.items())
    if isinstance(signed, list):
        return isinstance(given, list) and len(given) == len(signed) and all(map(_same_reasons, given, signed))
    return given == signed  # JSON's numbers: 1 == 1.0, as the schema may show a whole float as an int
