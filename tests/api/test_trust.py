"""Trust that survives the database: the chain held against signed checkpoints kept outside it,
receipts a bank verifies offline, key rotation, and the limits of a public endpoint (failed
authentications, chunked bodies, the header) with the access log. On SQLite and PostgreSQL."""

from __future__ import annotations

import contextlib
import datetime as dt
import hashlib
import json
import os
import re
import stat
import time
from dataclasses import dataclass
from pathlib import Path

import pytest
from click.testing import CliRunner
from hypothesis import HealthCheck, example, given, settings as hypothesis_settings, strategies as st
from sqlalchemy import text

from api.cli import main
from api.common.access_log import AccessLog
from api.common.limits import FailedAuthentications, SharedFailedAuthentications
from api.db.engine import make_engine, sessions
from api.settings import settings
from api.trust import audit
from api.trust.signing import (
    Keyring,
    SignatureProblem,
    make_receipt,
    read_checkpoints,
    read_keyring,
    sign_checkpoint,
    verify_receipt,
)
from tests.api.service_fixtures import ORIGIN, decisions_origin, make_service


@pytest.fixture
def signing_service(database_url, model_home, champion_store, tmp_path, monkeypatch):
    """The service signing a checkpoint every 2 decisions (and not by the clock: a slow machine would
    add checkpoints at odd sizes), its access log kept small."""
    svc = make_service(database_url, model_home, tmp_path, monkeypatch, champion_store,
                       checkpoint_every_decisions=2, checkpoint_every_seconds=3600, auth_failures_allowed=5,
                       access_log_max_bytes=4096)
    svc.home = tmp_path / "service-home"
    with svc.client:
        yield svc


def decide(service, count: int, start: int = 1) -> list[dict]:
    answers = []
    for i in range(start, start + count):
        response = service.ask(code=service.codes[i], authorization=f"valid{i}")
        assert response.status_code == 200, response.text
        answers.append(response.json())
    return answers


def keyring(service):
    return read_keyring(service.home / "keys" / "public-keys.json")


def checkpoints(service):
    return read_checkpoints(service.home / "audit" / "checkpoints.jsonl", keyring(service))


def verify(service, signed=None):
    with sessions(make_engine(service.url))() as session:
        return audit.verify(session, checkpoints=signed)


def execute(service, *statements: str) -> None:
    with make_engine(service.url).begin() as connection:
        for statement in statements:
            connection.execute(text(statement))


def cut_short(service, keep: int) -> None:
    """What someone with write access to the database can do: delete the newest decisions and
    move the chain's head back to the last one kept."""
    execute(service, f"DELETE FROM decisions WHERE seq > {keep}",
            f"UPDATE audit_head SET last_seq = {keep}, last_hash = (SELECT hash FROM decisions WHERE seq = {keep})")


def rewrite_and_rehash(service, seq: int) -> None:
    """Change one decision's limit and recompute every hash after it, the head included: a chain
    that verifies on its own."""
    _rehashed_from(service, "decisions", 1, audit.HASHED, audit.payload, seq,
                   lambda row: {**row, "limit_yuan": row["limit_yuan"] + 1_000_000}, "limit_yuan")


def _rehashed_from(service, table: str, head_id: int, hashed, text_of, seq: int, change, column: str) -> None:
    """Row ``seq`` of the chain ``table`` changed by ``change`` (in ``column``), and every hash after it
    recomputed as the chain computes it (``text_of``: its canonical text), its head included."""
    engine = make_engine(service.url)
    columns = ", ".join((*hashed, "prev_hash", "hash"))
    with engine.begin() as connection:
        rows = [dict(r._mapping) for r in connection.execute(text(f"SELECT {columns} FROM {table} ORDER BY seq"))]
        previous = rows[seq - 2]["hash"] if seq > 1 else audit.GENESIS
        for row in rows[seq - 1:]:
            if row["seq"] == seq:
                row = change(row)
            digest = audit.content_hash(previous, text_of(row))
            connection.execute(text(f"UPDATE {table} SET {column} = :value, prev_hash = :prev, hash = :hash "
                                    "WHERE seq = :seq"),
                               {"value": row[column], "prev": previous, "hash": digest, "seq": row["seq"]})
            previous = digest
        connection.execute(text("UPDATE audit_head SET last_hash = :hash WHERE id = :id"), {"hash": previous, "id": head_id})
    engine.dispose()


# --- the chain, the database alone -----------------------------------------------------------

def test_deleting_the_newest_a_middle_row_or_editing_a_prev_hash_each_break_the_chain(signing_service):
    decide(signing_service, 6)
    assert verify(signing_service).ok
    execute(signing_service, "DELETE FROM decisions WHERE seq = 6")  # the newest, the head left as it was
    gone = verify(signing_service)
    assert not gone.ok and "chain head says 6 rows" in gone.problem
    execute(signing_service, "DELETE FROM decisions WHERE seq = 3")
    middle = verify(signing_service)
    assert not middle.ok and middle.first_broken_seq == 4 and "row 3 is missing" in middle.problem
    execute(signing_service, f"UPDATE decisions SET prev_hash = '{'f' * 64}' WHERE seq = 2")
    edited = verify(signing_service)
    assert not edited.ok and edited.first_broken_seq == 2 and "previous-hash" in edited.problem


# --- checkpoints --------------------------------------------------------------------------------

def test_the_service_signs_checkpoints_outside_the_database(signing_service):
    decide(signing_service, 5)
    signed = checkpoints(signing_service)
    assert [c.size for c in signed] == [2, 4]  # every 2 decisions; the 5th waits for its count or its 10 s
    with sessions(make_engine(signing_service.url))() as session:
        assert audit.head(session)[0] == 5
    assert all(len(c.head) == 64 and c.key_id == Keyring(signing_service.home / "keys").current_id() for c in signed)
    result = verify(signing_service, signed)
    assert result.ok and result.checkpoints == 2 and result.covered == 4
    keys = signing_service.home / "keys"
    assert stat.S_IMODE(os.stat(keys).st_mode) == 0o700
    [private] = list(keys.glob("signing-*.pem"))
    assert stat.S_IMODE(os.stat(private).st_mode) == 0o600
    # the key never enters the database
    pem = private.read_text()
    secret = "".join(pem.splitlines()[1:-1])
    with make_engine(signing_service.url).connect() as connection:
        for table in ("decisions", "audit_head", "api_clients"):
            dumped = " ".join(str(r) for r in connection.execute(text(f"SELECT * FROM {table}")))
            assert secret not in dumped


def test_truncation_after_a_checkpoint_is_found_and_named(signing_service):
    decide(signing_service, 6)
    signed = checkpoints(signing_service)
    assert max(c.size for c in signed) == 6
    cut_short(signing_service, 3)
    assert verify(signing_service).ok, "the database alone cannot see it: this is why checkpoints exist"
    result = verify(signing_service, signed)
    assert not result.ok and result.rows == 3
    assert "rows 4–6 were deleted" in result.problem and "cut short" in result.problem


def test_a_row_rewritten_before_a_checkpoint_and_the_chain_rehashed_is_found(signing_service):
    decide(signing_service, 6)
    signed = checkpoints(signing_service)
    rewrite_and_rehash(signing_service, 3)
    assert verify(signing_service).ok, "a rehashed chain verifies on its own"
    result = verify(signing_service, signed)
    assert not result.ok and result.first_broken_seq == 4
    assert "rows 3–4" in result.problem and "rows 1–2 are as signed" in result.problem


def test_an_operator_signs_a_checkpoint_only_of_a_chain_that_holds_against_the_ones_before(signing_service):
    decide(signing_service, 4)
    assert run_cli(signing_service, "audit", "checkpoint", "sign").exit_code == 0
    assert max(c.size for c in checkpoints(signing_service)) == 4
    rewrite_and_rehash(signing_service, 2)
    refused = run_cli(signing_service, "audit", "checkpoint", "sign")
    assert refused.exit_code == 1 and "not signed" in refused.output
    assert max(c.size for c in checkpoints(signing_service)) == 4


def test_the_services_key_without_its_checkpoints_is_not_verified(signing_service):
    decide(signing_service, 3)
    assert run_cli(signing_service, "audit", "checkpoint", "sign").exit_code == 0
    path = signing_service.home / "audit" / "checkpoints.jsonl"
    path.write_text("", "utf-8")  # `: > checkpoints.jsonl`
    emptied = run_cli(signing_service, "audit", "verify")
    assert emptied.exit_code == 1 and "audit chain NOT VERIFIED: the chain records a checkpoint of 3 rows" in \
        emptied.output and "it holds no checkpoint" in emptied.output
    path.unlink()
    gone = run_cli(signing_service, "audit", "verify")
    assert gone.exit_code == 1 and "NOT VERIFIED" in gone.output and "gone" in gone.output


def test_a_checkpoint_is_signed_only_after_the_chain_is_on_disk_and_a_failure_waits(tmp_path, monkeypatch):
    from api.trust.signing import Checkpointer

    order = []
    checkpointer = Checkpointer(Keyring(tmp_path / "keys").signer(), tmp_path / "c.jsonl", every_decisions=1,
                                make_durable=lambda: order.append("durable"), origin=ORIGIN)
    monkeypatch.setattr("api.trust.signing.append_checkpoint", lambda path, c: order.append(("signed", c.size)))
    checkpointer.wrote(1, "a" * 64)
    assert order == ["durable", ("signed", 1)]

    def cannot_sync():
        raise OSError("no space left on device")

    checkpointer.make_durable = cannot_sync
    with pytest.raises(OSError):
        checkpointer.wrote(2, "b" * 64)
    assert order == ["durable", ("signed", 1)] and checkpointer.seconds_until_due() > 0  # not again at once


def test_a_checkpoint_written_in_part_is_taken_back(tmp_path, monkeypatch):
    from api.trust.signing import append_checkpoint

    keys_dir = tmp_path / "keys"
    signer = Keyring(keys_dir).signer()
    path = tmp_path / "c.jsonl"
    append_checkpoint(path, sign_checkpoint(signer, 1, "a" * 64, ORIGIN))
    whole = path.read_bytes()
    monkeypatch.setattr("api.trust.signing.os.write", lambda fd, data: os.pwrite(fd, data[:10], len(whole)) and 10)
    with pytest.raises(OSError, match="not written whole"):
        append_checkpoint(path, sign_checkpoint(signer, 2, "b" * 64, ORIGIN))
    assert path.read_bytes() == whole
    assert [c.size for c in read_checkpoints(path, read_keyring(keys_dir / "public-keys.json"))] == [1]


@pytest.mark.parametrize("line", ['{"format": "xyd-checkpoint/1", "size": 1e400}', '{"format": "xyd-checkpoint/1", '
                                  '"size": "5", "head": "%s", "time": "t", "key_id": "k", "signature": "s"}' % ("a" * 64),
                                  "[" * 100_000, '"just text"', '{"format": "xyd-checkpoint/1", "size": true}'])
def test_a_hostile_checkpoint_line_is_refused_in_words(tmp_path, line):
    keys_dir = tmp_path / "keys"
    Keyring(keys_dir).signer()
    path = tmp_path / "c.jsonl"
    path.write_text(line + "\n")
    with pytest.raises(SignatureProblem, match="line 1"):
        read_checkpoints(path, read_keyring(keys_dir / "public-keys.json"))


def test_a_damaged_or_swapped_private_key_is_named(tmp_path):
    keyring = Keyring(tmp_path / "keys")
    signer = keyring.signer()
    private = tmp_path / "keys" / f"signing-{signer.key_id}.pem"
    kept = private.read_bytes()
    private.write_text("garbage")
    with pytest.raises(SignatureProblem, match="not an Ed25519 private key"):
        keyring.signer()
    other = Keyring(tmp_path / "other").signer()
    private.write_bytes((tmp_path / "other" / f"signing-{other.key_id}.pem").read_bytes())
    with pytest.raises(SignatureProblem, match="does not hold the key"):
        keyring.signer()
    private.write_bytes(kept)
    assert keyring.signer().key_id == signer.key_id


def test_a_corrupt_keyring_is_named_not_a_traceback(signing_service):
    (signing_service.home / "keys" / "public-keys.json").write_text("{not json")
    listed = run_cli(signing_service, "audit", "keys", "list")
    assert listed.exit_code == 1 and "not a keyring" in listed.output
    served = signing_service.client.get("/v1/audit/keys")
    assert served.status_code == 503 and served.json()["code"] == "KEYRING_UNREADABLE"


def test_an_altered_checkpoint_line_is_refused(signing_service, tmp_path):
    decide(signing_service, 2)
    source = signing_service.home / "audit" / "checkpoints.jsonl"
    line = json.loads(source.read_text())
    line["size"] = 1
    altered = tmp_path / "altered.jsonl"
    altered.write_text(json.dumps(line) + "\n")
    with pytest.raises(SignatureProblem, match="line 1: the signature does not verify"):
        read_checkpoints(altered, keyring(signing_service))
    altered.write_text("not json\n")
    with pytest.raises(SignatureProblem, match="line 1: not a checkpoint"):
        read_checkpoints(altered, keyring(signing_service))


# --- receipts and keys ------------------------------------------------------------------------

def test_a_receipt_verifies_offline_and_fails_after_any_change(signing_service):
    [answer] = decide(signing_service, 1)
    receipt = answer["receipt"]
    assert receipt["hash"] == answer["hash"] and receipt["format"] == "xyd-receipt/2"
    keys = keyring(signing_service)
    signed = verify_receipt(receipt, keys, answer)
    assert signed["limit_yuan"] == answer["limit_yuan"] and signed["seq"] == receipt["seq"]
    for field, value in (("limit_yuan", answer["limit_yuan"] + 1), ("grade", "A" if answer["grade"] != "A" else "B"),
                         ("decided_at", "2020-01-01T00:00:00Z"), ("name", "另一家公司")):
        with pytest.raises(SignatureProblem, match="the answer is not the one signed"):
            verify_receipt(receipt, keys, {**answer, field: value})
    changed_reasons = json.loads(json.dumps(answer["reasons"]))
    changed_reasons["margin"] += 1
    with pytest.raises(SignatureProblem, match="the answer is not the one signed"):
        verify_receipt(receipt, keys, {**answer, "reasons": changed_reasons})
    with pytest.raises(SignatureProblem, match="signature"):
        verify_receipt({**receipt, "seq": receipt["seq"] + 1}, keys, answer)
    with pytest.raises(SignatureProblem, match="does not hold"):
        verify_receipt({**receipt, "key_id": "0" * 16}, keys, answer)
    with pytest.raises(SignatureProblem, match="vouches for the answer it came with: give the whole answer"):
        verify_receipt(receipt, keys)
    # what the receipt holds beyond its place is one digest: the answer is not repeated in it
    assert len(json.dumps(receipt)) < 512 and answer["name"] and answer["name"] not in json.dumps(receipt)
    # read back, the decision carries no receipt: the platform never signs a row it did not just write
    again = signing_service.client.get(f"/v1/decisions/{answer['request_id']}", headers=signing_service.headers("bank"))
    assert again.status_code == 200 and again.json()["receipt"] is None
    # read back as stored, the decision is the answer the receipt vouches for
    assert verify_receipt(receipt, keys, {**again.json(), "receipt": None})["request_id"] == answer["request_id"]
    # a row rewritten in the database cannot be given a receipt by reading it back; the bank's still tells
    execute(signing_service, f"UPDATE decisions SET limit_yuan = limit_yuan + 1 WHERE seq = {receipt['seq']}")
    changed = signing_service.client.get(f"/v1/decisions/{answer['request_id']}", headers=signing_service.headers("bank"))
    with pytest.raises(SignatureProblem, match="the answer is not the one signed"):
        verify_receipt(receipt, keys, {**changed.json(), "receipt": None})


@hypothesis_settings(max_examples=60, deadline=None, suppress_health_check=list(HealthCheck))
@given(data=st.data())
def test_changing_any_byte_of_a_receipt_makes_it_fail(receipt_and_keys, v1_receipt_and_keys, data):
    receipt, keys, answer = data.draw(st.sampled_from([receipt_and_keys, (*v1_receipt_and_keys, None)]))
    field = data.draw(st.sampled_from(["record" if "record" in receipt else "content", "hash", "prev_hash",
                                       "signature"]))
    value = receipt[field]
    position = data.draw(st.integers(0, len(value) - 1))
    replacement = data.draw(st.characters(codec="utf-8").filter(lambda c: c != value[position]))
    assert verify_receipt(receipt, keys, answer)
    with pytest.raises(SignatureProblem):
        verify_receipt({**receipt, field: value[:position] + replacement + value[position + 1:]}, keys, answer)


def test_a_signature_has_one_spelling(receipt_and_keys):
    """Base64 leaves the last character's low bits unused: a signature spelt another way decodes
    to the same bytes, and is refused all the same (found by the property test above)."""
    receipt, keys, answer = receipt_and_keys
    signature = receipt["signature"]
    last = signature.rstrip("=")[-1]
    alphabet = "ABCDEFGHIJKLMNOPQRSTUVWXYZabcdefghijklmnopqrstuvwxyz0123456789+/"
    twin = alphabet[alphabet.index(last) ^ 1]  # differs in the lowest, unused bit
    spelt = signature.rstrip("=")[:-1] + twin + "=" * (len(signature) - len(signature.rstrip("=")))
    import base64
    assert base64.b64decode(spelt) == base64.b64decode(signature)
    with pytest.raises(SignatureProblem, match="signature"):
        verify_receipt({**receipt, "signature": spelt}, keys, answer)


def test_a_receipts_hashes_are_read_only_as_64_hexadecimal_digits(receipt_and_keys):
    """A hash spelt any other way (other letters of the right length, a number, nothing) is refused
    by name before anything is computed from it."""
    receipt, keys, answer = receipt_and_keys
    for field in ("prev_hash", "hash", "record"):
        for spelt in ("z" * 64, receipt[field].upper()[:63], 12345, None):
            with pytest.raises(SignatureProblem, match=f"its {field} is not 64 hexadecimal digits"):
                verify_receipt({**receipt, field: spelt}, keys, answer)


def test_a_receipt_of_row_0_or_a_checkpoint_of_no_rows_is_refused(receipt_and_keys, tmp_path):
    """A chain's rows count from 1 and nothing is signed over an empty chain: a receipt placed at row
    0, or a checkpoint line vouching for 0 rows, is refused by name, not read as a place."""
    from api.trust.signing import Keyring, append_checkpoint

    receipt, keys, answer = receipt_and_keys
    with pytest.raises(SignatureProblem, match=r"0 is not a whole number of rows \(1 or more\)"):
        verify_receipt({**receipt, "seq": 0}, keys, answer)
    keyring = Keyring(tmp_path / "keys")
    path = tmp_path / "c.jsonl"
    append_checkpoint(path, sign_checkpoint(keyring.signer(), 1, "a" * 64, ORIGIN))
    line = json.loads(path.read_text("utf-8"))
    path.write_text(path.read_text("utf-8") + json.dumps({**line, "size": 0}) + "\n", "utf-8")
    with pytest.raises(SignatureProblem, match=r"line 2: not a checkpoint \(0 is not a whole number of rows"):
        read_checkpoints(path, keyring.public_keys())


JSON = st.recursive(st.none() | st.booleans() | st.integers() | st.floats(allow_nan=False) | st.text(max_size=8),
                    lambda inner: st.lists(inner, max_size=3) | st.dictionaries(st.text(max_size=8), inner, max_size=3),
                    max_leaves=10)


@hypothesis_settings(max_examples=150, deadline=None, suppress_health_check=list(HealthCheck))
@given(receipt_fields=st.dictionaries(st.sampled_from(["format", "seq", "prev_hash", "hash", "content", "record",
                                                       "key_id", "signature"]), JSON),
       answer_fields=st.none() | st.dictionaries(st.sampled_from(["limit_yuan", "versions", "reasons", "grade", "hash",
                                                                  "decided_at", "name"]), JSON))
def test_any_document_is_verified_or_refused_with_words_never_a_crash(receipt_and_keys, v1_receipt_and_keys,
                                                                      receipt_fields, answer_fields):
    receipt, keys, answer = receipt_and_keys
    old, _ = v1_receipt_and_keys
    given_answers = [None, answer_fields, None if answer_fields is None else {**answer, **answer_fields}]
    for document in ({**receipt, **receipt_fields}, {**old, **receipt_fields}, receipt_fields):
        for given_answer in given_answers:
            try:
                verify_receipt(document, keys, given_answer)
            except SignatureProblem as problem:
                assert str(problem)


def v1_receipt(signer, seq: int, prev_hash: str, hash_: str, content: str) -> dict:
    """A receipt as the service signed them before migration 0010 (format 1: the decision's content
    in full, which banks keep and must still be able to verify)."""
    message = f"xyd-receipt/1\n{seq}\n{prev_hash}\n{hash_}\n".encode("utf-8")
    return {"format": "xyd-receipt/1", "seq": seq, "prev_hash": prev_hash, "hash": hash_, "content": content,
            "key_id": signer.key_id, "signature": signer.sign(message)}


@pytest.fixture(scope="module")
def receipt_and_keys(tmp_path_factory):
    """A receipt of format 2 over a real decision's answer (the documentation's example), signed by
    a fresh key, and the answer it came with."""
    from api.examples import PRE_CREDIT
    from api.trust.signing import answer_digest

    folder = tmp_path_factory.mktemp("receipt")
    signer = Keyring(folder).signer()
    answer = {k: v for k, v in json.loads(json.dumps(PRE_CREDIT)).items() if k not in ("hash", "receipt")}
    record, previous = hashlib.sha256(b"the row as stored").hexdigest(), "ab" * 32
    hash_ = audit.content_hash(previous, audit.content_v2(7, answer["decided_at"], answer_digest(answer), record))
    receipt = make_receipt(signer, 7, previous, hash_, record)
    answer |= {"hash": hash_, "receipt": receipt}
    keys = read_keyring(folder / "public-keys.json")
    assert verify_receipt(receipt, keys, answer)["seq"] == 7
    return receipt, keys, answer


@pytest.fixture(scope="module")
def v1_receipt_and_keys(tmp_path_factory):
    """A receipt of format 1 over a real decision's canonical content, signed by a fresh key."""
    from api.examples import PRE_CREDIT

    folder = tmp_path_factory.mktemp("receipt")
    signer = Keyring(folder).signer()
    row = {"seq": 7, "request_id": PRE_CREDIT["request_id"], "client_id": 1, "uscc": PRE_CREDIT["uscc"],
           "authorization_id": PRE_CREDIT["authorization_id"], "model_version": "1", "policy_version": "2026.12-2",
           "profile_as_of": "2026-06-30", "feature_set_version": "873754083a07", "product": None,
           "requested_amount": None, "pd": PRE_CREDIT["pd"], "score": PRE_CREDIT["score"], "grade": "B",
           "decision": "approve", "limit_yuan": 80000, "reasons": json.dumps(PRE_CREDIT["reasons"], sort_keys=True),
           "created_at": PRE_CREDIT["decided_at"]}
    previous = "ab" * 32
    receipt = v1_receipt(signer, 7, previous, audit.chain_hash(previous, row), audit.payload(row))
    keys = read_keyring(folder / "public-keys.json")
    assert verify_receipt(receipt, keys)["seq"] == 7
    return receipt, keys


def test_rotating_the_key_keeps_old_receipts_and_checkpoints_verifiable(signing_service, model_home, champion_store,
                                                                         tmp_path, monkeypatch, database_url):
    [before] = decide(signing_service, 1)
    decide(signing_service, 1, start=2)
    old = Keyring(signing_service.home / "keys").current_id()
    rotated = Keyring(signing_service.home / "keys").generate()
    assert rotated.key_id != old
    keys = keyring(signing_service)
    assert keys[old].retired_at is not None and keys[rotated.key_id].retired_at is None
    assert not (signing_service.home / "keys" / f"signing-{old}.pem").exists()  # the retired private half is gone
    assert verify_receipt(before["receipt"], keys, before)["request_id"] == before["request_id"]
    assert verify(signing_service, checkpoints(signing_service)).ok
    # a service started after the rotation signs with the new key
    restarted = make_service(signing_service.url, model_home, tmp_path, monkeypatch, champion_store,
                             checkpoint_every_decisions=2, checkpoint_every_seconds=3600) if database_url.startswith("sqlite") else None
    if restarted is not None:
        with restarted.client:
            response = restarted.ask(code=restarted.codes[3], authorization="valid3")
        assert response.json()["receipt"]["key_id"] == rotated.key_id
        assert verify_receipt(response.json()["receipt"], keyring(signing_service), response.json())


# --- the command line ---------------------------------------------------------------------------

def run_cli(service, *args: str):
    settings.cache_clear()
    os.environ.update(XYD_DATABASE_URL=service.url, XYD_HOME=str(service.home))
    try:
        return CliRunner().invoke(main, list(args))
    finally:
        del os.environ["XYD_DATABASE_URL"], os.environ["XYD_HOME"]
        settings.cache_clear()


def test_the_command_line_exports_checkpoints_verifies_against_them_and_checks_a_receipt(signing_service, tmp_path):
    answers = decide(signing_service, 4)
    exported = run_cli(signing_service, "audit", "checkpoint", "export", "--out", str(tmp_path / "kept.jsonl"))
    assert exported.exit_code == 0 and "2 checkpoints" in exported.output, exported.output
    published = tmp_path / "kept.keys.json"
    assert published.exists()
    intact = run_cli(signing_service, "audit", "verify", "--checkpoints", str(tmp_path / "kept.jsonl"),
                     "--keys", str(published))
    assert intact.exit_code == 0 and "intact: 4 decisions" in intact.output and "vouches for 4" in intact.output
    saved = tmp_path / "answer.json"
    saved.write_text(json.dumps(answers[0], ensure_ascii=False))
    good = run_cli(signing_service, "audit", "verify-receipt", str(saved), "--keys", str(published))
    assert good.exit_code == 0 and "verified" in good.output and answers[0]["uscc"] in good.output
    saved.write_text(json.dumps({**answers[0], "limit_yuan": answers[0]["limit_yuan"] + 10_000}))
    bad = run_cli(signing_service, "audit", "verify-receipt", str(saved), "--keys", str(published))
    assert bad.exit_code == 1 and "NOT VERIFIED" in bad.output and "the answer is not the one signed" in bad.output
    saved.write_text(json.dumps(answers[0]["receipt"]))
    bare = run_cli(signing_service, "audit", "verify-receipt", str(saved), "--keys", str(published))
    assert bare.exit_code == 1 and "give the whole answer" in bare.output
    assert run_cli(signing_service, "audit", "verify-receipt", str(tmp_path / "none.json")).exit_code == 1
    for document in ('{"results": 3}', "[1, 2]", "not json", '{"receipt": {"format": "xyd-receipt/1"}}'):
        saved.write_text(document)
        odd = run_cli(signing_service, "audit", "verify-receipt", str(saved), "--keys", str(published))
        assert odd.exit_code in (1, 2) and isinstance(odd.exception, SystemExit), odd.output
    cut_short(signing_service, 2)
    cut = run_cli(signing_service, "audit", "verify", "--checkpoints", str(tmp_path / "kept.jsonl"),
                  "--keys", str(published))
    assert cut.exit_code == 1 and "rows 3–4 were deleted" in cut.output
    # without a file named, the service's own checkpoints are used
    assert run_cli(signing_service, "audit", "verify").exit_code == 1
    listed = run_cli(signing_service, "audit", "keys", "list")
    assert listed.exit_code == 0 and "current" in listed.output and "BEGIN" not in listed.output
    document = json.loads(run_cli(signing_service, "audit", "keys", "list", "--json").output)
    assert document["current"] in {k["key_id"] for k in document["keys"]} and document["publish"].endswith(
        "public-keys.json") and "PRIVATE" not in json.dumps(document)


# --- limits and the access log -------------------------------------------------------------------

def test_repeated_failures_get_429_with_retry_after_and_a_valid_key_is_never_locked_out(signing_service):
    client = signing_service.client
    wrong = {"Authorization": f"Bearer {signing_service.keys['bank'][:12]}wrongwrongwrong"}
    statuses = [client.get("/v1/models/current", headers=wrong).status_code for _ in range(8)]
    assert statuses[:5] == [401] * 5 and statuses[5:] == [429] * 3
    limited = client.get("/v1/models/current", headers=wrong)
    assert limited.json()["code"] == "TOO_MANY_FAILED_AUTHENTICATIONS"
    assert 1 <= int(limited.headers["retry-after"]) <= 60
    # the bank's own key, from the same address and with the same prefix, goes on working
    assert client.get("/v1/models/current", headers=signing_service.headers("bank")).status_code == 200
    assert signing_service.ask().status_code == 200


@pytest.mark.parametrize("shared", [False, True], ids=["in-process", "shared-by-workers"])
def test_the_failure_window_slides(shared, tmp_path):
    failures = SharedFailedAuthentications(tmp_path / "f.bin", allowed=3, window_seconds=60) if shared else \
        FailedAuthentications(allowed=3, window_seconds=60)
    key = ("address", "10.0.0.1")
    assert [failures.failed(key, now=t) for t in (0, 1, 2)] == [0, 0, 0]
    assert failures.failed(key, now=3) == 58  # a 4th failure is allowed once the 2nd has left the window, at 61
    assert failures.failed(key, now=61.5) == 0 and failures.failed(("address", "10.0.0.2"), now=61.5) == 0


def test_failures_counted_by_one_worker_count_for_all_of_them(tmp_path):
    """Two workers (two instances on one file, as two processes map it): failures add up, so the
    allowance is met once in all; the counts of another address stay apart; a service restarted
    with another allowance starts its counts again rather than misreading the file."""
    import multiprocessing

    path = tmp_path / "run" / "auth-failures.bin"
    one, two = (SharedFailedAuthentications(path, allowed=3, window_seconds=60) for _ in range(2))
    key = ("address", "10.0.0.1")
    assert [one.failed(key, now=0), two.failed(key, now=1), one.failed(key, now=2)] == [0, 0, 0]
    assert two.failed(key, now=3) == 58 and one.failed(("prefix", "xyd_ban_abcd"), now=3) == 0
    with multiprocessing.get_context("spawn").Pool(1) as pool:  # a worker process of its own
        assert pool.apply(_fail_once, (str(path), 3, 4.0)) == 58  # allowed again once the failure of 2 has left
    again = SharedFailedAuthentications(path, allowed=5, window_seconds=60)
    assert again.failed(key, now=5) == 0
    # the machine restarted: its monotonic clock begins again below the times kept, which count for nothing
    rebooted = SharedFailedAuthentications(path, allowed=5, window_seconds=60)
    assert [rebooted.failed(key, now=1_000_000) for _ in range(5)] == [0] * 5
    assert [rebooted.failed(key, now=t) for t in (1.0, 1.5, 2.0, 2.5, 3.0)] == [0] * 5


def test_an_allowance_too_large_to_keep_every_time_of_is_counted_per_worker(tmp_path):
    """XYD_AUTH_FAILURES_ALLOWED set very high all but turns the limit off: the counts are then kept
    per worker, not in a file that would need 8 bytes per allowed failure for every key."""
    from api.common.limits import failure_counts

    shared = failure_counts(tmp_path, 20, 60.0)
    assert isinstance(shared, SharedFailedAuthentications) and (tmp_path / "run" / "auth-failures.bin").stat().st_size < 2**21
    large = failure_counts(tmp_path / "other", 100_000, 60.0)
    assert type(large) is FailedAuthentications and not (tmp_path / "other").exists()
    with pytest.raises(ValueError, match="at most 64 times a key"):
        SharedFailedAuthentications(tmp_path / "f.bin", allowed=64)


def _fail_once(path: str, allowed: int, now: float) -> int:
    return SharedFailedAuthentications(Path(path), allowed=allowed, window_seconds=60).failed(
        ("address", "10.0.0.1"), now=now)


def test_only_the_bearer_header_is_read(signing_service):
    response = signing_service.client.get("/v1/models/current", headers={"X-API-Key": signing_service.keys["bank"]})
    assert response.status_code == 401 and "X-API-Key header is not read" in response.json()["message"]


def test_a_chunked_body_over_the_limit_gets_413_like_a_sized_one(signing_service):
    def chunks(total: int):
        piece = b" " * 10_000
        for _ in range(total // len(piece)):
            yield piece

    headers = {**signing_service.headers("bank"), "Content-Type": "application/json"}
    response = signing_service.client.post("/v1/pre-credit", content=chunks(300_000), headers=headers)
    assert response.status_code == 413 and response.json()["code"] == "BODY_TOO_LARGE"
    body = json.dumps({"uscc": signing_service.codes[0], "authorization_id": signing_service.authorizations["valid"]})
    small = signing_service.client.post("/v1/pre-credit", content=iter([body.encode()]), headers=headers)
    assert small.status_code == 200, small.text


def test_the_access_log_has_one_line_per_request_and_never_a_key_or_a_code(signing_service):
    answers = decide(signing_service, 2)
    signing_service.client.get("/v1/models/current", headers={"Authorization": "Bearer xyd_ban_not-a-key"})
    path = signing_service.home / "logs" / "access.jsonl"
    deadline = time.monotonic() + 5  # lines are written in batches, a quarter of a second apart
    while time.monotonic() < deadline and (not path.exists() or '"AUTH_INVALID"' not in path.read_text()):
        time.sleep(0.05)
    lines = [json.loads(line) for line in path.read_text().splitlines()]
    decided = [line for line in lines if line["route"] == "/v1/pre-credit"]
    assert [d["request_id"] for d in decided] == [a["request_id"] for a in answers]
    assert all(d["status"] == 200 and d["client_id"] == signing_service.ids["bank"] and d["model_version"]
               and d["latency_ms"] > 0 and d["address"] for d in decided)
    failed = lines[-1]
    assert failed["status"] == 401 and failed["code"] == "AUTH_INVALID" and failed["client_id"] is None
    written = path.read_text()
    for secret in (*signing_service.keys.values(), "not-a-key", *(a["uscc"] for a in answers)):
        assert secret not in written


def test_the_access_log_writes_in_batches_off_the_request_and_closing_writes_the_rest(tmp_path):
    path = tmp_path / "access.jsonl"
    log = AccessLog(path)
    for i in range(50):
        log.write(request_id=f"r{i}", status=200)
    deadline = time.monotonic() + 5
    while time.monotonic() < deadline and (not path.exists() or path.read_text().count("\n") < 50):
        time.sleep(0.02)
    assert path.read_text().count("\n") == 50  # within a flush interval, without a call to flush
    log.write(request_id="last", status=200)
    log.close()
    assert json.loads(path.read_text().splitlines()[-1])["request_id"] == "last"


def test_the_access_log_rotates_across_writers_and_loses_no_line(tmp_path):
    path = tmp_path / "access.jsonl"
    writers = [AccessLog(path, max_bytes=2_000, backups=50) for _ in range(3)]  # as three worker processes
    for i in range(300):
        writers[i % 3].write(request_id=f"r{i}", route="/healthz", status=200, latency_ms=0.1)
        writers[i % 3].flush()  # a batch of one line each time
    files = [path, *sorted(tmp_path.glob("access.jsonl.*"), key=lambda p: int(p.suffix[1:]))]
    # a file passes the limit by at most one batch per writer (each notices at its next one)
    assert len(files) > 5 and all(f.stat().st_size <= 2_000 + 3 * 200 for f in files)
    seen = [json.loads(line)["request_id"] for f in files for line in f.read_text().splitlines()]
    assert sorted(seen) == sorted(f"r{i}" for i in range(300))
    kept = [AccessLog(tmp_path / "few" / "access.jsonl", max_bytes=1_000, backups=2)]
    for i in range(100):
        kept[0].write(request_id=f"r{i}", status=200)
        kept[0].flush()
    for writer in (*writers, *kept):
        writer.close()
    assert sorted(p.name for p in (tmp_path / "few").glob("access.jsonl*")) == \
        ["access.jsonl", "access.jsonl.1", "access.jsonl.2"]


# --- every promise a receipt makes --------------------------------------------------------------

UNSIGNED_ANSWER_FIELDS = {"receipt": "the receipt itself"}
"""The answer's fields no receipt covers, each with why: every other field the answer shows is signed
(its hash by the signature, its time by the content, the rest by the answer's digest)."""


def leaves(value, path: tuple = ()):
    """The path of every value of a JSON document that holds no other (an empty list or object is one)."""
    if isinstance(value, dict) and value:
        for key, inner in value.items():
            yield from leaves(inner, (*path, key))
    elif isinstance(value, list) and value:
        for index, inner in enumerate(value):
            yield from leaves(inner, (*path, index))
    else:
        yield path


def changed_at(document, path: tuple, value):
    """A deep copy of ``document`` with the value at ``path`` replaced."""
    copy = json.loads(json.dumps(document))
    *parents, last = path
    target = copy
    for key in parents:
        target = target[key]
    target[last] = value
    return copy


def value_at(document, path: tuple):
    for key in path:
        document = document[key]
    return document


def another_value(current, nullable: bool = True):
    """Any JSON value of the current one's kind (or null, where ``nullable``) that is not equal to it:
    a number is another number (1 and 1.0 are one value), a text another text."""
    finite = st.floats(allow_nan=False, allow_infinity=False)
    if isinstance(current, bool):
        kind = st.booleans()
    elif isinstance(current, (int, float)):
        kind = st.integers() | finite
    elif isinstance(current, str):
        kind = st.text(max_size=40)
    elif current is None:
        kind = st.text(max_size=40) | st.integers() | finite | st.booleans()
    elif isinstance(current, list) and not current:  # an empty list: one with something in it
        kind = st.lists(JSON, min_size=1, max_size=3)
    elif isinstance(current, dict) and not current:  # an empty object: one that shows a value
        kind = st.dictionaries(st.text(max_size=8), st.text(max_size=8) | st.integers() | finite, min_size=1, max_size=3)
    else:
        kind = JSON
    if nullable and current is not None:
        kind = kind | st.none()
    return kind.filter(lambda value: not (value == current and isinstance(value, bool) == isinstance(current, bool)))


def test_every_field_an_answer_shows_is_covered_by_its_receipt(signing_service):
    """Promise: a bank holding an answer and its receipt can tell if ANY field the answer shows was
    changed, removed or added since the platform signed it (every field but the ones
    UNSIGNED_ANSWER_FIELDS names, every value inside them: the enterprise's name, the reasons, the
    versions), while the answer as received verifies. And the stored row the receipt's ``record``
    digest covers is every column of a decision but the chain's own (place, time, format, digests)."""
    from api.db.tables import Decision
    from api.precredit.schemas import PreCreditPublic
    from api.trust.signing import UNSIGNED_ANSWER_FIELDS as DIGEST_LEAVES_OUT

    answers = [*decide(signing_service, 1),
               signing_service.ask(code=signing_service.codes[2], authorization="valid2", requested_amount=500_000,
                                   product="税易贷").json()]
    assert answers[1]["product"] == "税易贷" and answers[1]["requested_amount"] == 500_000, answers[1]
    keys = keyring(signing_service)
    assert set(audit.RECORDED) == set(Decision.__table__.c.keys()) - {"seq", "created_at", "prev_hash", "hash",
                                                                     "chain_format", "answer_digest"}
    # the digest leaves out what the rest of the receipt covers, and nothing else
    assert set(DIGEST_LEAVES_OUT) == {"hash", "receipt", "decided_at"} and set(UNSIGNED_ANSWER_FIELDS) <= \
        set(PreCreditPublic.model_fields)
    for answer in answers:
        assert answer["name"] and set(answer) == set(PreCreditPublic.model_fields)
        receipt = answer["receipt"]
        assert verify_receipt(receipt, keys, answer)["request_id"] == answer["request_id"]  # as received
        shown = {k: v for k, v in answer.items() if k not in UNSIGNED_ANSWER_FIELDS}
        paths = list(leaves(shown))
        assert len([p for p in paths if p[0] == "reasons"]) > 20, paths  # knock-outs, factors, reference, rights...
        for path in paths:  # each value, whatever else it may be changed to
            refusal = ("the answer's hash is" if path == ("hash",) else
                       "the answer is not the one signed|lacks the signed|not shaped as a decision")
            changing(answer, keys, path, refusal, nullable=True, examples=8 if len(path) == 1 else 3)()
        for field in shown:  # each field left out
            cut = {k: v for k, v in answer.items() if k != field}
            with pytest.raises(SignatureProblem, match="the answer is not the one signed|lacks the signed field"):
                verify_receipt(receipt, keys, cut)
        with pytest.raises(SignatureProblem, match="the answer is not the one signed"):  # or one added
            verify_receipt(receipt, keys, {**answer, "note": "已获批"})


def changing(answer: dict, keys, path: tuple, refusal: str, nullable: bool, examples: int):
    """The property: the answer with the value at ``path`` changed (to another value of its kind,
    or null where ``nullable``) is refused by its receipt, in words that say ``refusal``."""

    @hypothesis_settings(max_examples=examples, deadline=None, database=None)
    @given(value=another_value(value_at(answer, path), nullable=nullable))
    def a_changed_value_is_caught(value):
        where = ".".join(map(str, path))
        try:
            verify_receipt(answer["receipt"], keys, changed_at(answer, path, value))
        except SignatureProblem as problem:
            assert re.search(refusal, str(problem)), f"{where} changed to {value!r}: refused, in other words: {problem}"
        else:
            pytest.fail(f"the answer with {where} changed from {value_at(answer, path)!r} to {value!r} still verifies")

    return a_changed_value_is_caught


def test_every_field_of_a_receipt_is_covered_by_its_signature(receipt_and_keys):
    """Promise: no field of a receipt (its schema's every field) can be changed and the receipt
    still verify; the receipt as signed verifies."""
    from api.trust.schemas import Receipt

    receipt, keys, answer = receipt_and_keys
    assert set(receipt) == set(Receipt.model_fields)
    assert verify_receipt(receipt, keys, answer)["seq"] == receipt["seq"]
    for field in Receipt.model_fields:
        changing_receipt(receipt, keys, field, answer)()


def changing_receipt(receipt: dict, keys, field: str, answer: dict):
    """The property: the receipt with ``field`` changed to any other value is refused."""

    @hypothesis_settings(max_examples=25, deadline=None, database=None)
    @given(value=another_value(receipt[field]))
    def a_changed_field_is_refused(value):
        with pytest.raises(SignatureProblem):
            verify_receipt({**receipt, field: value}, keys, answer)
            pytest.fail(f"the receipt with its {field} changed from {receipt[field]!r} to {value!r} still verifies")

    return a_changed_field_is_refused


# --- every chain's head -------------------------------------------------------------------------

@dataclass(frozen=True)
class Chain:
    """A hash chain the platform keeps: its table, its head's row in ``audit_head``, the words
    ``xyd audit verify`` names it by, and whether a signed anchor outside the database holds it."""

    table: str
    head: int
    named: str
    checkpointed: bool


CHAINS = (Chain("decisions", 1, "audit chain", checkpointed=True),
          Chain("workflow_events", audit.EVENTS_HEAD, "workflow events", checkpointed=True))
"""Every chain the platform keeps: the test below holds this list to the schema's chained tables,
the heads a migrated database holds and the chains the code names (audit.CHAIN_ROW)."""


def chained_tables() -> set[str]:
    """The schema's tables whose every row hashes the one before it."""
    from api.db.tables import Base

    return {name for name, table in Base.metadata.tables.items() if {"prev_hash", "hash"} <= set(table.c.keys())}


def grow_every_chain(service) -> None:
    """Five decisions (the 5th past the last checkpoint, at 4: only the head vouches for it) and
    three objections filed (three workflow events)."""
    from features.registry import FEATURES

    decide(service, 5)
    for feature in [f.name for f in FEATURES][:3]:
        filed = service.client.post("/v1/objections", headers=service.headers("operator"),
                                    json={"uscc": service.codes[1], "feature": feature, "grounds": "该指标有误",
                                          "attachments": ["ab" * 32]})
        assert filed.status_code == 201, filed.text
    with make_engine(service.url).connect() as connection:
        sizes = {chain.table: connection.execute(text(f"SELECT count(*) FROM {chain.table}")).scalar_one()
                 for chain in CHAINS}
    assert sizes == {"decisions": 5, "workflow_events": 3}
    assert max(c.size for c in checkpoints(service)) == 4


def delete_newest(count: int):
    def tamper(connection, chain, head):
        connection.execute(text(f"DELETE FROM {chain.table} WHERE seq > :keep"), {"keep": head.last_seq - count})
    return tamper


def move_head(**values):
    def tamper(connection, chain, head):
        changed = {"last_seq": head.last_seq, "last_hash": head.last_hash}
        changed.update({k: v(head) for k, v in values.items()})
        connection.execute(text("UPDATE audit_head SET last_seq = :last_seq, last_hash = :last_hash WHERE id = :id"),
                           {**changed, "id": chain.head})
    return tamper


def head_hash_of_the_row_before(connection, chain, head):
    before = connection.execute(text(f"SELECT prev_hash FROM {chain.table} WHERE seq = :seq"),
                                {"seq": head.last_seq}).scalar_one()
    connection.execute(text("UPDATE audit_head SET last_hash = :hash WHERE id = :id"), {"hash": before, "id": chain.head})


TAMPERINGS = {
    "its newest row deleted, the head left": delete_newest(1),
    "its two newest rows deleted, the head left": delete_newest(2),
    "its head's hash altered": move_head(last_hash=lambda head: "f" * 64),
    "its head's hash set to the row before's": head_hash_of_the_row_before,
    "its head's count one short": move_head(last_seq=lambda head: head.last_seq - 1),
    "its head's count one over": move_head(last_seq=lambda head: head.last_seq + 1),
}



@contextlib.contextmanager
def tampered(service, chain: Chain, tamper):
    """The chain tampered with, then put back exactly as it was (its rows and its head)."""
    from api.db.tables import Base

    engine = make_engine(service.url)
    table = Base.metadata.tables[chain.table]
    with engine.begin() as connection:
        head = connection.execute(text("SELECT last_seq, last_hash FROM audit_head WHERE id = :id"),
                                  {"id": chain.head}).one()
        rows = [dict(row._mapping) for row in connection.execute(table.select().order_by(table.c.seq))]
        tamper(connection, chain, head)
    try:
        yield
    finally:
        with engine.begin() as connection:
            kept = {seq for (seq,) in connection.execute(text(f"SELECT seq FROM {chain.table}"))}
            missing = [row for row in rows if row["seq"] not in kept]
            if missing:
                connection.execute(table.insert(), missing)
            connection.execute(text("DELETE FROM audit_head WHERE id = :id"), {"id": chain.head})
            connection.execute(text("INSERT INTO audit_head (id, last_seq, last_hash) VALUES (:id, :seq, :hash)"),
                               {"seq": head.last_seq, "hash": head.last_hash, "id": chain.head})
        engine.dispose()


def verified_by_the_command_line(service):
    """`xyd audit verify`: its exit code and, per chain, its line of output (by the words that name it)."""
    result = run_cli(service, "audit", "verify")
    lines = result.output.splitlines()
    said = {chain.table: [line for line in lines if line.startswith(chain.named)] for chain in CHAINS}
    return result.exit_code, said, result.output


def test_the_chains_listed_are_every_chain_the_platform_keeps(signing_service):
    """Promise: the list of chains the head checks below are held to is the platform's every chain:
    every table the schema chains, and every head the database holds, is one of them (a new chain
    must be listed, and so verified, before this passes)."""
    assert chained_tables() == {chain.table for chain in CHAINS} == set(audit.CHAIN_ROW)
    assert {audit.CHAIN_ROW[chain.table] for chain in CHAINS} == {chain.head for chain in CHAINS}
    with make_engine(signing_service.url).connect() as connection:
        heads = {id_ for (id_,) in connection.execute(text("SELECT id FROM audit_head"))}
    assert heads == {chain.head for chain in CHAINS}
    code, said, output = verified_by_the_command_line(signing_service)
    assert code == 0 and all(said[chain.table] for chain in CHAINS), output  # verify names each one


@pytest.mark.parametrize("chain", CHAINS, ids=[chain.table for chain in CHAINS])
def test_every_chains_head_is_checked_deleting_its_newest_rows_or_altering_its_head_is_found(signing_service,
                                                                                              chain):
    """Promise: for every chain the platform keeps, `xyd audit verify` finds its newest rows
    deleted, or its head (the size and the last hash the database records for it) altered, even
    where no signed checkpoint covers those rows yet: it exits 1 with a line naming that chain
    BROKEN at its head, and every other chain intact. Put back, the chain verifies again."""
    grow_every_chain(signing_service)
    code, said, output = verified_by_the_command_line(signing_service)
    assert code == 0 and all("intact" in said[c.table][0] for c in CHAINS), output
    for tampering, tamper in TAMPERINGS.items():
        with tampered(signing_service, chain, tamper):
            code, said, output = verified_by_the_command_line(signing_service)
            assert code == 1, f"{chain.table}, {tampering}: not found\n{output}"
            [line] = said[chain.table]
            assert line.startswith(f"{chain.named} BROKEN") and "head says" in line, f"{tampering}:\n{output}"
            assert all("intact" in said[other.table][0] for other in CHAINS if other != chain), output
        code, said, output = verified_by_the_command_line(signing_service)
        assert code == 0, f"{chain.table}, {tampering}: not put back\n{output}"
    if chain.checkpointed:  # its anchor outside the database, altered or removed, is found too
        path = signing_service.home / "audit" / "checkpoints.jsonl"
        kept = path.read_text()
        last = json.loads(kept.splitlines()[-1])
        path.write_text(kept + json.dumps({**last, "size": last["size"] + 1}) + "\n")
        code, said, output = verified_by_the_command_line(signing_service)
        assert code == 1 and f"{chain.named} NOT VERIFIED" in output and "signature does not verify" in output, output
        path.unlink()
        code, said, output = verified_by_the_command_line(signing_service)
        assert code == 1 and f"{chain.named} NOT VERIFIED" in output and "gone" in output, output
        path.write_text(kept)


def delete_head_row(connection, chain, head):
    connection.execute(text("DELETE FROM audit_head WHERE id = :id"), {"id": chain.head})


def cut_two_and_move_the_head_back(connection, chain, head):
    """What `cut_short` does to the decisions, for any chain: its two newest rows deleted and its
    head moved back to the row before them, consistently (for the decisions, before the row their
    last checkpoint vouches for)."""
    keep = head.last_seq - 2
    connection.execute(text(f"DELETE FROM {chain.table} WHERE seq > :keep"), {"keep": keep})
    connection.execute(text(f"UPDATE audit_head SET last_hash = (SELECT hash FROM {chain.table} WHERE seq = :keep), "
                            "last_seq = :keep WHERE id = :id"), {"keep": keep, "id": chain.head})


def _chains(gap_of: dict):
    return [pytest.param(chain, id=chain.table, marks=gap_of.get(chain.table, ())) for chain in CHAINS]


@pytest.mark.parametrize("chain", _chains({}))
def test_every_chains_head_row_deleted_is_found(signing_service, chain):
    """Promise: deleting a chain's head (its row in audit_head) does not make the chain verify as
    empty: `xyd audit verify` exits 1 naming that chain, every other chain intact."""
    grow_every_chain(signing_service)
    with tampered(signing_service, chain, delete_head_row):
        code, said, output = verified_by_the_command_line(signing_service)
    assert code == 1 and said[chain.table][0].startswith(f"{chain.named} BROKEN"), output
    assert all("intact" in said[other.table][0] for other in CHAINS if other != chain), output


@pytest.mark.parametrize("chain", _chains({}))
def test_every_chain_cut_short_with_its_head_moved_back_is_found_against_its_anchor(signing_service, chain):
    """Promise: a chain whose newest rows were deleted and its head moved back to match (what
    anyone with write access to the database can do) is found by what holds it outside the
    database: `xyd audit verify` exits 1 naming that chain and the rows gone."""
    grow_every_chain(signing_service)
    with tampered(signing_service, chain, cut_two_and_move_the_head_back):
        code, said, output = verified_by_the_command_line(signing_service)
    assert code == 1 and said[chain.table][0].startswith(f"{chain.named} BROKEN"), output
    assert "deleted" in said[chain.table][0], output
    assert all("intact" in said[other.table][0] for other in CHAINS if other != chain), output


# --- fast: the chain, its checkpoints and receipts on small hand-built chains (SQLite, no service) ---

@pytest.fixture(scope="module")
def empty_chain_file(tmp_path_factory):
    """A migrated SQLite database with two banks and empty chains, made once (each test copies it);
    the rows are the first bank's, the second is there to move a decision to."""
    import sqlite3

    from api.access import clients
    from api.db.engine import upgrade, writing

    path = tmp_path_factory.mktemp("chain") / "template.db"
    upgrade(f"sqlite:///{path}")
    engine = make_engine(f"sqlite:///{path}")
    with writing(sessions(engine)) as session:
        clients.add_client(session, "bank", "bank")
        clients.add_client(session, "another bank", "bank")
    engine.dispose()
    with contextlib.closing(sqlite3.connect(path)) as raw:
        raw.execute("PRAGMA wal_checkpoint(TRUNCATE)")
    return path


def decision_row(n: int, chain_format: int = audit.CHAIN_FORMAT, **changes) -> dict:
    """A decision as the service hands it to the chain (client 1: the template's bank), in the
    format written now (2: with the enterprise's name and its answer's digest) or, with
    ``chain_format=1``, as it was handed over before migration 0010."""
    row = {"request_id": f"r-{n}", "client_id": 1, "uscc": "91420502MA4K0G2B2X", "authorization_id": f"a-{n}",
           "model_version": "3", "policy_version": "2026.12-2", "profile_as_of": "2026-06-30",
           "feature_set_version": "873754083a07", "product": "税易贷" if n % 2 else None,
           "requested_amount": 500_000 if n % 2 else None, "pd": 0.0125 * n, "score": 700.5 - n, "grade": "B",
           "decision": "approve", "limit_yuan": 10_000 * n, "reasons": json.dumps({"margin": n}, separators=(",", ":"))}
    if chain_format != 1:
        row |= {"chain_format": chain_format, "name": f"宜昌第{n}有限公司",
                "answer_digest": hashlib.sha256(f"answer {n}".encode()).hexdigest()}
    return row | changes


class SmallChain:
    """A chain of hand-built decisions in a SQLite file of its own, and ways to tamper with it."""

    def __init__(self, path):
        self.engine = make_engine(f"sqlite:///{path}")
        self.factory = sessions(self.engine)

    def append(self, rows: list[dict], now=None):
        from api.db.engine import write_transaction

        with write_transaction(self.engine) as connection:
            return audit.append(connection, rows, now)

    def grow(self, count: int, start: int = 1):
        return self.append([decision_row(n) for n in range(start, start + count)])

    def verify(self, checkpoints=None, batch: int = 5_000) -> audit.Verification:
        with self.factory() as session:
            return audit.verify(session, batch=batch, checkpoints=checkpoints)

    def execute(self, *statements, **values) -> None:
        with self.engine.begin() as connection:
            for statement in statements:
                connection.execute(text(statement), values)

    def rows(self) -> list[dict]:
        columns = ", ".join((*audit.HASHED, "prev_hash", "hash"))
        with self.engine.connect() as connection:
            return [dict(r._mapping) for r in connection.execute(text(f"SELECT {columns} FROM decisions ORDER BY seq"))]

    def head(self) -> tuple[int, str]:
        with self.factory() as session:
            return audit.head(session)

    def signed(self, *sizes: int, heads: dict | None = None):
        """Checkpoints of the chain as it stands at each of ``sizes`` (their signatures are not read
        by audit.verify: api.trust.signing.read_checkpoints checks them first)."""
        from api.trust.signing import Checkpoint

        hashes = {row["seq"]: row["hash"] for row in self.rows()}
        heads = heads or {}
        return [Checkpoint(size, heads.get(size, hashes.get(size, "e" * 64)), f"2026-12-0{i + 1}T00:00:00Z",
                           "k" * 16, "sig", i + 1) for i, size in enumerate(sizes)]

    def rehash_from(self, seq: int, **changes) -> None:
        """Rewrite row ``seq`` and recompute every hash after it, the head's too: a chain that
        verifies on its own."""
        rows = self.rows()
        previous = rows[seq - 2]["hash"] if seq > 1 else audit.GENESIS
        with self.engine.begin() as connection:
            for row in rows[seq - 1:]:
                if row["seq"] == seq:
                    row.update(changes)
                digest = audit.chain_hash(previous, row)
                sets = ", ".join(f"{k} = :{k}" for k in (*changes, "prev_hash", "hash"))
                connection.execute(text(f"UPDATE decisions SET {sets} WHERE seq = :seq"),
                                   {**{k: row[k] for k in changes}, "prev_hash": previous, "hash": digest,
                                    "seq": row["seq"]})
                previous = digest
            connection.execute(text("UPDATE audit_head SET last_hash = :hash WHERE id = 1"), {"hash": previous})

    def cut_short(self, keep: int) -> None:
        self.execute("DELETE FROM decisions WHERE seq > :keep",
                     "UPDATE audit_head SET last_seq = :keep, last_hash = "
                     "COALESCE((SELECT hash FROM decisions WHERE seq = :keep), :genesis) WHERE id = 1",
                     keep=keep, genesis=audit.GENESIS)


@pytest.fixture
def small_chain(empty_chain_file, tmp_path):
    import shutil

    path = tmp_path / "chain.db"
    shutil.copy(empty_chain_file, path)
    chain = SmallChain(path)
    yield chain
    chain.engine.dispose()


def test_each_decision_hashes_its_canonical_content_after_the_hash_before_it(small_chain):
    """Promise: hash = sha256(prev_hash + "\\n" + payload); seq counts on from the head; one append
    shares one created_at; the head moves to the last. A row of format 2 (written now) hashes
    ``{"answer":…,"decided_at":…,"format":2,"record":…,"seq":N}``, ``record`` the SHA-256 of its stored
    fields (name and reasons included) as canonical JSON (sorted keys, no spaces, text as written,
    floats as Python writes them, -0.0 as 0.0); a row of format 1 (before migration 0010) hashes
    those fields themselves, with its place and time, and still does in the same chain."""
    old = small_chain.append([decision_row(1, chain_format=1, pd=-0.0)], now="2026-12-07T00:30:00.000000Z")
    first = small_chain.append([decision_row(2, pd=-0.0)], now="2026-12-07T01:00:00.000000Z")
    stored = small_chain.append([decision_row(3), decision_row(4)], now="2026-12-07T02:00:00.000000Z")
    rows = (*old, *first, *stored)
    assert [row.seq for row in rows] == [1, 2, 3, 4] and [row.chain_format for row in rows] == [1, 2, 2, 2]
    assert [row.created_at for row in stored] == ["2026-12-07T02:00:00.000000Z"] * 2
    previous = audit.GENESIS
    for row in rows:
        assert row.prev_hash == previous
        if row.chain_format == 1:
            expected = {k: getattr(row, k) for k in audit.HASHED_V1}
            assert json.loads(row.content) == expected and list(json.loads(row.content)) == sorted(audit.HASHED_V1)
            assert row.record is None
        else:
            recorded = json.dumps({k: getattr(row, k) + 0.0 if isinstance(getattr(row, k), float) else getattr(row, k)
                                   for k in audit.RECORDED}, sort_keys=True, ensure_ascii=False, separators=(",", ":"))
            assert "宜昌第" in recorded and ": " not in recorded and ", " not in recorded
            assert row.record == hashlib.sha256(recorded.encode()).hexdigest()
            assert row.content == (f'{{"answer":"{row.answer_digest}","decided_at":"{row.created_at}","format":2,'
                                   f'"record":"{row.record}","seq":{row.seq}}}')
        assert row.hash == hashlib.sha256(f"{previous}\n{row.content}".encode()).hexdigest()
        assert row.hash == audit.chain_hash(previous, {k: getattr(row, k) for k in audit.HASHED})
        assert row.hash == audit.content_hash(previous, row.content)
        previous = row.hash
    assert ": " not in old[0].content and ", " not in old[0].content and "税易贷" in old[0].content
    for n, chain_format in ((1, 1), (2, 2)):
        assert audit.payload(decision_row(n, chain_format, pd=0.0, seq=n, created_at="t")) == \
            audit.payload(decision_row(n, chain_format, pd=-0.0, seq=n, created_at="t"))
        assert audit.payload({**decision_row(n, chain_format), "seq": 1, "created_at": "t", "hash": "x",
                              "prev_hash": "y"}) == audit.payload({**decision_row(n, chain_format), "seq": 1,
                                                                   "created_at": "t"})  # only the hashed fields
    assert '"pd":0.0,' in old[0].content and '"limit_yuan":10000,' in old[0].content  # a whole number stays one
    assert small_chain.head() == (4, previous)
    assert [row["hash"] for row in small_chain.rows()] == [row.hash for row in rows]
    result = small_chain.verify()
    assert result.ok and result.rows == 4 and result.problem is None and result.first_broken_seq is None


def test_an_empty_chain_verifies_and_its_head_is_the_genesis(small_chain):
    assert small_chain.head() == (0, "0" * 64)
    result = small_chain.verify()
    assert result.ok and result.rows == 0 and result.checkpoints == 0 and result.covered == 0


HASHED_CHANGES = {"request_id": "r-x", "client_id": 2, "uscc": "91420500MA4ABCDE1X", "authorization_id": "b",
                  "model_version": "4", "policy_version": "p2", "profile_as_of": "2026-05-31",
                  "feature_set_version": "000000000000", "product": "其他", "requested_amount": 1,
                  "pd": 0.5, "score": 1.5, "grade": "E", "decision": "decline", "limit_yuan": 1, "reasons": "{}",
                  "created_at": "2020-01-01T00:00:00.000000Z", "name": "另一家公司", "answer_digest": "0" * 64,
                  "chain_format": 1}


@hypothesis_settings(max_examples=40, deadline=None, suppress_health_check=list(HealthCheck))
@given(seq=st.integers(1, 6), field=st.sampled_from(sorted(HASHED_CHANGES)), batch=st.integers(1, 7))
def test_any_decision_changed_in_the_database_is_named(tmp_path_factory, empty_chain_file, seq, field, batch):
    """Promise: a row whose content is changed (any hashed field) is named: verify stops at it,
    says its content does not match its hash, and counts the rows before it as checked."""
    chain = fresh_chain(tmp_path_factory, empty_chain_file, 6)
    try:
        chain.execute(f"UPDATE decisions SET {field} = :value WHERE seq = :seq", value=HASHED_CHANGES[field], seq=seq)
        result = chain.verify(batch=batch)
        assert not result.ok and result.first_broken_seq == seq and result.rows == seq - 1
        assert result.problem == "its content does not match its hash"
        assert result.first_broken_request == (HASHED_CHANGES[field] if field == "request_id" else f"r-{seq}")
    finally:
        chain.engine.dispose()


def fresh_chain(tmp_path_factory, template, rows: int) -> SmallChain:
    import shutil

    path = tmp_path_factory.mktemp("chain") / "chain.db"
    shutil.copy(template, path)
    chain = SmallChain(path)
    chain.grow(rows)
    return chain


@hypothesis_settings(max_examples=30, deadline=None, suppress_health_check=list(HealthCheck))
@given(deleted=st.integers(1, 7), batch=st.integers(1, 8))
def test_any_deleted_decision_is_named_whatever_the_batch(tmp_path_factory, empty_chain_file, deleted, batch):
    """Promise: deleting any one row is found, read in batches of any size: a row before the newest
    is named missing at the row after it; the newest is found by the head, which still counts it."""
    chain = fresh_chain(tmp_path_factory, empty_chain_file, 7)
    try:
        head = chain.head()
        assert chain.verify(batch=batch).ok and chain.verify(batch=batch).rows == 7
        chain.execute("DELETE FROM decisions WHERE seq = :seq", seq=deleted)
        result = chain.verify(batch=batch)
        assert not result.ok and result.rows == deleted - 1
        if deleted < 7:
            assert result.first_broken_seq == deleted + 1 and result.first_broken_request == f"r-{deleted + 1}"
            assert result.problem == f"row {deleted} is missing (the next row is {deleted + 1})"
        else:
            assert result.first_broken_seq == 7 and result.first_broken_request is None
            assert result.problem == (f"the chain head says 7 rows ending in {head[1][:12]}…, the table gives 6 "
                                      f"ending in {chain.rows()[-1]['hash'][:12]}…")
    finally:
        chain.engine.dispose()


def test_a_reordered_or_relinked_decision_is_named(small_chain):
    """Promise: two decisions swapped in the chain, or a row's previous-hash edited, are named at
    the first row whose link no longer holds."""
    small_chain.grow(5)
    small_chain.execute("UPDATE decisions SET seq = -1 WHERE seq = 2", "UPDATE decisions SET seq = 2 WHERE seq = 3",
                        "UPDATE decisions SET seq = 3 WHERE seq = -1")
    swapped = small_chain.verify()
    assert not swapped.ok and swapped.first_broken_seq == 2 and swapped.first_broken_request == "r-3"
    assert swapped.problem == "its previous-hash does not match the row before it" and swapped.rows == 1
    small_chain.execute("UPDATE decisions SET seq = -1 WHERE seq = 2", "UPDATE decisions SET seq = 2 WHERE seq = 3",
                        "UPDATE decisions SET seq = 3 WHERE seq = -1")
    assert small_chain.verify().ok
    small_chain.execute("UPDATE decisions SET prev_hash = :other WHERE seq = 4", other="f" * 64)
    relinked = small_chain.verify()
    assert not relinked.ok and relinked.first_broken_seq == 4 and "previous-hash" in relinked.problem


def test_the_head_vouches_for_the_tables_end(small_chain):
    """Promise: the head row missing, or saying another size or last hash than the table's, is named."""
    small_chain.grow(3)
    last = small_chain.rows()[-1]["hash"]
    small_chain.execute("UPDATE audit_head SET last_hash = :h WHERE id = 1", h="f" * 64)
    moved = small_chain.verify()
    assert not moved.ok and moved.rows == 3 and moved.first_broken_seq == 4
    assert moved.problem == f"the chain head says 3 rows ending in {'f' * 12}…, the table gives 3 ending in {last[:12]}…"
    small_chain.execute("UPDATE audit_head SET last_hash = :h, last_seq = 2 WHERE id = 1", h=last)
    shorter = small_chain.verify()  # the head one short: the newest row is out of the check, and the hashes differ
    assert not shorter.ok and "the chain head says 2 rows" in shorter.problem and shorter.rows == 2
    small_chain.execute("DELETE FROM audit_head WHERE id = 1")
    gone = small_chain.verify()
    assert not gone.ok and gone.rows == 0 and gone.first_broken_seq == 1 and "head row is missing" in gone.problem


def test_the_check_stops_at_the_head_as_it_stood_when_it_began(small_chain):
    """Promise: writers may append while the chain is checked: a row past the head (its append not yet
    committed when the check read the head) is left to the next check, not reported."""
    stored = small_chain.grow(3)
    row = {**decision_row(4), "seq": 4, "created_at": "2026-12-07T00:00:00.000000Z"}
    small_chain.execute("INSERT INTO decisions (" + ", ".join((*audit.HASHED, "prev_hash", "hash")) + ") VALUES ("
                        + ", ".join(f":{k}" for k in (*audit.HASHED, "prev_hash", "hash")) + ")",
                        **row, prev_hash=stored[-1].hash, hash=audit.chain_hash(stored[-1].hash, row))
    result = small_chain.verify(batch=2)
    assert result.ok and result.rows == 3


def test_a_chain_rewritten_and_rehashed_after_a_checkpoint_is_named_with_the_rows_still_as_signed(small_chain):
    """Promise: a rehashed chain verifies alone, but against its checkpoints the first checkpointed
    row whose hash is not the signed one is named, with the rows in which the change lies and the
    rows still as signed."""
    small_chain.grow(6)
    signed = small_chain.signed(2, 4, 6)
    assert small_chain.verify(signed).ok and small_chain.verify(signed).covered == 6
    small_chain.rehash_from(3, limit_yuan=9_999_999)
    assert small_chain.verify().ok, "a rehashed chain verifies on its own"
    result = small_chain.verify(signed, batch=3)
    assert not result.ok and result.first_broken_seq == 4 and result.rows == 3
    assert result.first_broken_request == "r-4" and result.checkpoints == 3 and result.covered == 6
    assert "a decision in rows 3–4 was rewritten" in result.problem
    assert "rows 1–2 are as signed" in result.problem and signed[1].describe() in result.problem
    assert f"signed {signed[1].head[:12]}…" in result.problem


def test_every_checkpoint_of_a_size_is_held_against_that_row(small_chain):
    """Promise: two checkpoints of the same size (two keys, two processes) must both match its row."""
    small_chain.grow(3)
    good, bad = small_chain.signed(2, 2, heads={})[0], small_chain.signed(2, heads={2: "d" * 64})[0]
    assert small_chain.verify([good, good]).ok
    for order in ([good, bad], [bad, good]):
        result = small_chain.verify(order)
        assert not result.ok and result.first_broken_seq == 2 and "rows 1–2" in result.problem
        assert "rows 1–0 are as signed" in result.problem


def test_a_checkpoint_naming_any_other_head_for_its_row_is_found_whichever_way_the_hashes_sort(small_chain):
    """Promise: a checkpoint is held to its row by equality: a signed head that differs from the
    row's hash is named, however the two hashes compare as text."""
    small_chain.grow(3)
    actual = small_chain.rows()[1]["hash"]
    for other in ("0" * 64, "f" * 64, actual[:-1] + ("0" if actual[-1] != "0" else "1")):
        result = small_chain.verify(small_chain.signed(2, heads={2: other}))
        assert not result.ok and result.first_broken_seq == 2, other


def test_a_missing_head_row_is_named_and_no_checkpoint_is_counted(small_chain):
    """Promise: with its head row deleted, the chain's end cannot be vouched for: named, nothing
    counted as checked or as held against a checkpoint."""
    small_chain.grow(3)
    small_chain.execute("DELETE FROM audit_head WHERE id = 1")
    result = small_chain.verify(small_chain.signed(2))
    assert not result.ok and result.first_broken_seq == 1 and "head row is missing" in result.problem
    assert (result.rows, result.checkpoints, result.covered) == (0, 0, 0)


def test_an_events_hash_is_the_sha256_of_its_canonical_json_after_the_hash_before_it(small_chain):
    """Promise: an auditor recomputes an event's hash outside the platform: SHA-256 of the previous
    hash, a newline and the event's hashed fields as JSON with sorted keys, no spaces, UTF-8."""
    import hashlib

    from api.db.engine import writing

    with writing(small_chain.factory) as session:
        audit.lock_events(session)
        event = audit.append_event(session, "objection.filed", "o-1", "91420502MA4K0G2B2X", 1, {"理由": "记录有误"})
    fields = {k: getattr(event, k) for k in audit.EVENT_HASHED}
    canonical = json.dumps(dict(sorted(fields.items())), ensure_ascii=False, separators=(",", ":"))
    assert list(json.loads(canonical)) == sorted(audit.EVENT_HASHED)
    assert event.hash == hashlib.sha256(f"{audit.GENESIS}\n{canonical}".encode("utf-8")).hexdigest()


def test_a_break_under_a_checkpoint_says_the_checkpoint_covers_it(small_chain):
    """Promise: a row tampered without rehashing, inside what a checkpoint vouches for, is named as
    covered, with the rows found as signed; one past every checkpoint is named alone."""
    small_chain.grow(6)
    signed = small_chain.signed(2, 4)
    small_chain.execute("UPDATE decisions SET grade = 'E' WHERE seq = 4")
    covered = small_chain.verify(signed)
    assert covered.problem == ("its content does not match its hash; a signed checkpoint covers this row "
                               "(rows 1–2 are as signed)")
    small_chain.execute("UPDATE decisions SET grade = 'B' WHERE seq = 4", "UPDATE decisions SET grade = 'E' WHERE seq = 5")
    past = small_chain.verify(signed)
    assert not past.ok and past.first_broken_seq == 5 and past.problem == "its content does not match its hash"
    assert past.covered == 4 and past.checkpoints == 2


@pytest.mark.parametrize("keep", [0, 2, 3])
def test_a_chain_cut_short_under_its_checkpoints_names_the_rows_deleted(small_chain, keep):
    """Promise: deleting the newest rows and moving the head back verifies alone, but the newest
    checkpoint beyond the end names the rows deleted."""
    small_chain.grow(6)
    signed = small_chain.signed(1, 4, 6, 5)
    small_chain.cut_short(keep)
    assert small_chain.verify().ok and small_chain.verify().rows == keep
    result = small_chain.verify(signed)
    assert not result.ok and result.rows == keep and result.first_broken_seq == keep + 1
    assert result.first_broken_request is None and result.covered == 6
    assert f"the chain ends at row {keep}, but {signed[2].describe()} signed 6 rows" in result.problem
    assert f"rows {keep + 1}–6 were deleted" in result.problem
    assert small_chain.verify(small_chain.signed(*range(1, keep + 1))).ok


def test_the_canonical_texts_of_both_chains_are_frozen_so_rows_written_by_any_release_still_verify(small_chain):
    """Promise: a chain outlives the code that wrote it, and a bank recomputes a receipt's hash by
    the README's recipe. So the canonical texts are fixed, written out here by hand: keys sorted, no
    spaces, Chinese as UTF-8 characters (never \\u escapes), -0.0 written 0.0; the hash is SHA-256
    of the previous hash, a newline and that text. An event's detail is stored in the same form."""
    import hashlib

    decision = {"seq": 7, "request_id": "r-1", "client_id": 3, "uscc": "91420502MA4K0G2B2X", "authorization_id": 9,
                "model_version": "m1", "policy_version": "p1", "profile_as_of": "2026-10-31",
                "feature_set_version": "fs1", "product": "信易贷", "requested_amount": None, "pd": -0.0,
                "score": 612, "grade": "B", "decision": "approve", "limit_yuan": 80000,
                "reasons": '[{"zh":"按期纳税"}]', "created_at": "2026-12-07T08:00:00+08:00"}
    expected = ('{"authorization_id":9,"client_id":3,"created_at":"2026-12-07T08:00:00+08:00","decision":"approve",'
                '"feature_set_version":"fs1","grade":"B","limit_yuan":80000,"model_version":"m1","pd":0.0,'
                '"policy_version":"p1","product":"信易贷","profile_as_of":"2026-10-31","reasons":"[{\\"zh\\":\\"按期纳税\\"}]",'
                '"request_id":"r-1","requested_amount":null,"score":612,"seq":7,"uscc":"91420502MA4K0G2B2X"}')
    assert audit.payload(decision) == expected
    assert audit.chain_hash("a" * 64, decision) == hashlib.sha256(("a" * 64 + "\n" + expected).encode()).hexdigest()

    from api.db.engine import writing

    with writing(small_chain.factory) as session:
        audit.lock_events(session)
        event = audit.append_event(session, "objection_filed", "o-1", "91420502MA4K0G2B2X", None,
                                   {"理由": "该处罚已撤销", "when": dt_date(1)})
    assert event.detail == '{"when":"2026-06-01","理由":"该处罚已撤销"}'
    assert audit.event_payload({k: getattr(event, k) for k in audit.EVENT_HASHED}) == (
        '{"client_id":null,"created_at":"%s","detail":"{\\"when\\":\\"2026-06-01\\",\\"理由\\":\\"该处罚已撤销\\"}",'
        '"kind":"objection_filed","seq":1,"subject":"o-1","uscc":"91420502MA4K0G2B2X"}' % event.created_at)


def test_the_events_chain_names_a_changed_deleted_or_relinked_event_and_a_moved_head(small_chain):
    """Promise: the workflow events keep a chain of their own (head row 2) with the same rules;
    appending to it leaves the decisions' chain and head alone."""
    from api.db.engine import writing

    small_chain.grow(2)
    with writing(small_chain.factory) as session:
        audit.lock_events(session)
        events = [audit.append_event(session, "objection_filed", f"o-{n}", "91420502MA4K0G2B2X", 1 if n % 2 else None,
                                     {"feature": f"f{n}", "when": dt_date(n)}) for n in range(1, 5)]
    assert [e.seq for e in events] == [1, 2, 3, 4] and events[0].prev_hash == audit.GENESIS
    assert events[1].prev_hash == events[0].hash and json.loads(events[1].detail) == {"feature": "f2",
                                                                                    "when": "2026-06-02"}
    assert events[0].hash == audit.content_hash(audit.GENESIS, audit.event_payload(
        {k: getattr(events[0], k) for k in audit.EVENT_HASHED}))
    assert small_chain.verify().ok and small_chain.verify().rows == 2 and small_chain.head()[0] == 2

    def verify_events(batch=5_000):
        with small_chain.factory() as session:
            return audit.verify_events(session, batch=batch)

    assert verify_events().ok and verify_events(batch=1).rows == 4
    small_chain.execute("UPDATE workflow_events SET detail = '{}' WHERE seq = 3")
    changed = verify_events(batch=2)
    assert not changed.ok and changed.first_broken_seq == 3 and changed.first_broken_request == "o-3"
    assert changed.problem == "its content does not match its hash" and changed.rows == 2
    small_chain.execute("UPDATE workflow_events SET detail = :d WHERE seq = 3", d=events[2].detail)
    small_chain.execute("UPDATE workflow_events SET prev_hash = :h WHERE seq = 2", h="f" * 64)
    assert "previous-hash does not match the event before it" in verify_events().problem
    small_chain.execute("UPDATE workflow_events SET prev_hash = :h WHERE seq = 2", h=events[0].hash)
    small_chain.execute("DELETE FROM workflow_events WHERE seq = 2")
    gap = verify_events(batch=1)
    assert not gap.ok and gap.first_broken_seq == 3 and gap.problem == "event 2 is missing (the next event is 3)"
    small_chain.execute("DELETE FROM workflow_events WHERE seq > 1",
                        "UPDATE audit_head SET last_seq = 1, last_hash = :h WHERE id = 2", h=events[0].hash)
    assert verify_events().ok and verify_events().rows == 1
    small_chain.execute("UPDATE audit_head SET last_seq = 2 WHERE id = 2")
    over = verify_events()
    assert not over.ok and over.first_broken_seq == 2 and over.rows == 1
    assert over.problem.startswith("the events head says 2 events ending in") and "the table gives 1" in over.problem
    small_chain.execute("UPDATE audit_head SET last_seq = 1, last_hash = :h WHERE id = 2", h="f" * 64)
    assert "the events head says 1 events ending in ffffffffffff…" in verify_events().problem
    small_chain.execute("DELETE FROM audit_head WHERE id = 2")
    gone = verify_events()
    assert not gone.ok and gone.rows == 0 and gone.first_broken_seq == 1 and "events head row is missing" in gone.problem
    assert small_chain.verify().ok


def dt_date(n: int):
    import datetime as dt

    return dt.date(2026, 6, n)  # a date in an event's detail is written as text


def test_make_durable_puts_what_is_committed_in_the_database_file_itself(small_chain, tmp_path):
    """Promise: after make_durable the committed decisions are in the SQLite file, not only in its
    write-ahead log: the file copied alone holds them."""
    import shutil
    import sqlite3

    small_chain.grow(3)
    path = small_chain.engine.url.database
    alone = tmp_path / "alone.db"
    shutil.copy(path, alone)
    with contextlib.closing(sqlite3.connect(alone)) as raw:
        assert raw.execute("SELECT count(*) FROM decisions").fetchone() == (0,)  # still in the log only
    audit.make_durable(small_chain.engine)
    shutil.copy(path, alone)
    with contextlib.closing(sqlite3.connect(alone)) as raw:
        assert raw.execute("SELECT count(*) FROM decisions").fetchone() == (3,)


def test_a_new_keyring_keeps_its_private_key_private_and_publishes_its_public_key(tmp_path):
    """Promise: the first signer makes a key: its private half 0600 in a 0700 folder, never printed;
    the public keyring (0644) names it as current, by the id its raw key's SHA-256 gives."""
    import base64
    import hashlib

    from cryptography.hazmat.primitives import serialization

    keyring = Keyring(tmp_path / "keys")
    assert keyring.public_keys() == {} and keyring.current_id() is None
    with pytest.raises(SignatureProblem, match="no signing key under .*xyd audit keys rotate"):
        keyring.signer(create=False)
    assert not (tmp_path / "keys" / "public-keys.json").exists()
    signer = keyring.signer()
    assert keyring.signer(create=False).key_id == signer.key_id == keyring.current_id()  # made once, then read
    folder = tmp_path / "keys"
    assert stat.S_IMODE(os.stat(folder).st_mode) == 0o700
    assert stat.S_IMODE(os.stat(folder / f"signing-{signer.key_id}.pem").st_mode) == 0o600
    assert stat.S_IMODE(os.stat(folder / "public-keys.json").st_mode) == 0o644
    [key] = read_keyring(folder / "public-keys.json").values()
    assert key.key_id == signer.key_id == hashlib.sha256(key.raw).hexdigest()[:16] and len(key.raw) == 32
    assert key.retired_at is None and key == signer.public
    document = json.loads((folder / "public-keys.json").read_text())
    assert document["format"] == "xyd-keyring/1" and document["current"] == signer.key_id
    [entry] = document["keys"]
    assert entry["algorithm"] == "Ed25519" and base64.b64decode(entry["public_key"]) == key.raw
    loaded = serialization.load_pem_public_key(entry["public_key_pem"].encode())
    assert loaded.public_bytes(serialization.Encoding.Raw, serialization.PublicFormat.Raw) == key.raw
    pem = (folder / f"signing-{signer.key_id}.pem").read_text()
    assert repr(signer) == f"Signer(key_id={signer.key_id!r})" and "".join(pem.splitlines()[1:-1]) not in repr(signer)
    assert key.verifies(signer.sign(b"message"), b"message") and not key.verifies(signer.sign(b"message"), b"other")
    assert not key.verifies("not base64!", b"message") and not key.verifies("", b"message")


def test_a_rotated_key_is_retired_once_and_what_it_signed_stays_verifiable(tmp_path):
    """Promise: rotation makes a new key current, deletes the old private half, keeps its public
    half with the time it was retired (not moved by a later rotation); its checkpoints still verify."""
    from api.trust.signing import append_checkpoint

    keyring = Keyring(tmp_path / "keys")
    first = keyring.signer()
    path = tmp_path / "c.jsonl"
    append_checkpoint(path, sign_checkpoint(first, 1, "a" * 64, ORIGIN))
    second = keyring.generate()
    assert keyring.current_id() == second.key_id != first.key_id and keyring.signer().key_id == second.key_id
    assert not (tmp_path / "keys" / f"signing-{first.key_id}.pem").exists()
    assert (tmp_path / "keys" / f"signing-{second.key_id}.pem").exists()
    keys = keyring.public_keys()
    assert keys[first.key_id].retired_at == second.created_at and keys[second.key_id].retired_at is None
    third = keyring.generate()
    keys = keyring.public_keys()
    assert keys[first.key_id].retired_at == second.created_at  # retired once, when it was
    assert keys[second.key_id].retired_at == third.created_at and keys[third.key_id].retired_at is None
    append_checkpoint(path, sign_checkpoint(keyring.signer(), 2, "b" * 64, ORIGIN))
    assert [(c.size, c.key_id, c.line) for c in read_checkpoints(path, keys)] == [(1, first.key_id, 1),
                                                                                   (2, third.key_id, 2)]


def test_a_checkpoints_file_emptied_cut_short_or_replaced_is_named_against_the_chains_own_record(database_url,
                                                                                                 tmp_path):
    """Promise (SQLite and PostgreSQL): the chain keeps its own record of the largest checkpoint signed
    over it, so that emptying the checkpoints file, dropping its last lines or putting another
    chain's file in its place is NOT VERIFIED with the reason, instead of vouching for fewer rows
    (or none) without a word. A smaller checkpoint signed later, by a worker that wrote less, does
    not lower the record; the chain walked alone (no file held) is unaffected."""
    from api.access import clients
    from api.db.engine import upgrade, write_transaction, writing
    from api.trust.signing import Checkpointer

    upgrade(database_url)
    engine = make_engine(database_url)
    factory = sessions(engine)
    with writing(factory) as session:
        clients.add_client(session, "bank", "bank")
    path = tmp_path / "checkpoints.jsonl"
    checkpointer = Checkpointer(Keyring(tmp_path / "keys").signer(), path, every_decisions=1,
                                record_signed=lambda checkpoint: audit.record_signed(engine, checkpoint),
                                origin=decisions_origin(engine))
    for n in (1, 2, 3):
        with write_transaction(engine) as connection:
            [stored] = audit.append(connection, [decision_row(n)])
        checkpointer.wrote(stored.seq, stored.hash)
    keys = read_keyring(tmp_path / "keys" / "public-keys.json")
    audit.record_signed(engine, read_checkpoints(path, keys)[0])  # a late, smaller one changes nothing

    def verify(lines: list[str] | None):
        if lines is not None:
            path.write_text("".join(lines), "utf-8")
        with factory() as session:
            return audit.verify(session, checkpoints=None if lines is None else read_checkpoints(path, keys))

    whole = path.read_text("utf-8").splitlines(keepends=True)
    assert verify(whole).ok and verify(whole).covered == 3
    emptied = verify([])
    assert not emptied.ok and emptied.first_broken_seq is None and emptied.rows == 3
    assert "the chain records a checkpoint of 3 rows" in emptied.problem and "it holds no checkpoint" in emptied.problem
    assert "emptied, cut short or replaced" in emptied.problem
    short = verify(whole[:2])
    assert not short.ok and "its newest vouches for 2 rows" in short.problem
    assert verify(None).ok  # walked alone: nothing held, nothing to hold it to
    path.write_text("".join(whole), "utf-8")
    with engine.begin() as connection:
        connection.execute(text("DELETE FROM signed_checkpoints"))
    gone = verify(whole)
    assert not gone.ok and "record of its signed checkpoints is missing" in gone.problem
    engine.dispose()


def test_a_rotation_made_by_another_process_reaches_a_running_service_at_its_next_signature(tmp_path):
    """Promise: after `xyd audit keys rotate`, a running worker signs its next checkpoint and receipt
    with the new key, not the retired one (whose private half is gone from the disk); with the
    keyring unchanged it keeps its key without reading the file again."""
    from api.trust.signing import Checkpointer

    keys_dir = tmp_path / "keys"
    running = Keyring(keys_dir)  # the service's own keyring object
    first = running.signer()
    checkpointer = Checkpointer(first, tmp_path / "c.jsonl", every_decisions=1, keyring=running, origin=ORIGIN)
    checkpointer.wrote(1, "a" * 64)
    assert checkpointer.signer is first  # nothing rotated: the same key object, kept
    rotated = Keyring(keys_dir).generate()  # `xyd audit keys rotate`, in another process
    checkpointer.wrote(2, "b" * 64)
    assert checkpointer.signer.key_id == rotated.key_id != first.key_id
    keys = read_keyring(keys_dir / "public-keys.json")
    assert [(c.size, c.key_id) for c in read_checkpoints(tmp_path / "c.jsonl", keys)] == [(1, first.key_id),
                                                                                          (2, rotated.key_id)]
    receipt = make_receipt(checkpointer.signer, 3, "c" * 64, "d" * 64, "{}")
    assert receipt["key_id"] == rotated.key_id and keys[first.key_id].retired_at is not None
    (keys_dir / "public-keys.json").unlink()  # the keyring file gone for a moment (a restore): signing goes on
    assert checkpointer.signer.key_id == rotated.key_id


HOSTILE_KEYRINGS = {
    "not json": ("{not json", "not a keyring"),
    "not utf-8": (b"\xff\xfe{}", "not a keyring"),
    "deep": ("[" * 100_000, "not a keyring"),
    "a list": ("[]", r"not a keyring \(no list of keys\)"),
    "keys not a list": ('{"keys": {}}', r"not a keyring \(no list of keys\)"),
    "a key without its id": ('{"keys": [{"public_key": "%s", "created_at": "t"}]}', "not a keyring"),
    "a key not base64": ('{"keys": [{"key_id": "k", "public_key": "**", "created_at": "t"}]}', "not a keyring"),
    "a key of another id": ('{"keys": [{"key_id": "0000000000000000", "public_key": "%s", "created_at": "t"}]}',
                            "is not the Ed25519 key its id names"),
    "a key of another id sorting after its own": (
        '{"keys": [{"key_id": "ffffffffffffffff", "public_key": "%s", "created_at": "t"}]}',
        "is not the Ed25519 key its id names"),
    "a key of 31 bytes": ('{"keys": [{"key_id": "%s", "public_key": "%s", "created_at": "t"}]}',
                          "is not the Ed25519 key its id names"),
    "a key without its time": ('{"keys": [{"key_id": "%s", "public_key": "%s"}]}', "not a keyring"),
    "an entry not an object": ('{"keys": ["k"]}', "not a keyring"),
}


@pytest.mark.parametrize("name", HOSTILE_KEYRINGS)
def test_a_hostile_keyring_is_refused_in_words(tmp_path, name):
    """Promise: a keyring file that is not one (or holds a key that is not the one its id names)
    is refused as a SignatureProblem naming the file, by the reader and by the service's keyring."""
    import base64

    from api.trust.signing import key_id

    good = os.urandom(32)
    short = good[:31]
    text_, words = HOSTILE_KEYRINGS[name]
    if name == "a key of 31 bytes":
        text_ = text_ % (key_id(short), base64.b64encode(short).decode())
    elif isinstance(text_, str) and text_.count("%s") == 2:
        text_ = text_ % (key_id(good), base64.b64encode(good).decode())
    elif isinstance(text_, str) and "%s" in text_:
        text_ = text_ % base64.b64encode(good).decode()
    folder = tmp_path / "keys"
    folder.mkdir()
    path = folder / "public-keys.json"
    path.write_bytes(text_ if isinstance(text_, bytes) else text_.encode())
    with pytest.raises(SignatureProblem, match=words) as refused:
        read_keyring(path)
    assert str(path) in str(refused.value)
    with pytest.raises(SignatureProblem, match=words):
        Keyring(folder).signer()
    with pytest.raises(SignatureProblem, match="no such keyring file"):
        read_keyring(tmp_path / "none.json")


@pytest.mark.parametrize("current", ["0123456789abcdef", 5, ["x"]])
def test_a_keyring_naming_a_current_key_it_does_not_hold_is_refused(tmp_path, current):
    keyring = Keyring(tmp_path / "keys")
    keyring.signer()
    document = json.loads(keyring.public_file.read_text())
    keyring.public_file.write_text(json.dumps({**document, "current": current}))
    for action in (keyring.signer, keyring.current_id, keyring.generate):
        with pytest.raises(SignatureProblem, match="is not in the keyring"):
            action()


def test_a_missing_private_key_is_named_with_what_to_do(tmp_path):
    keyring = Keyring(tmp_path / "keys")
    signer = keyring.signer()
    (tmp_path / "keys" / f"signing-{signer.key_id}.pem").unlink()
    with pytest.raises(SignatureProblem, match=f"the current key {signer.key_id} has no private file .*restore it"):
        keyring.signer()


def test_a_checkpoint_signs_its_size_head_and_time_and_reads_back_line_by_line(tmp_path):
    """Promise: a checkpoint's signature covers ``xyd-checkpoint/2\n{origin}\n{size}\n{head}\n{time}\n``
    (format 1, before chains were named, ``xyd-checkpoint/1\n{size}\n{head}\n{time}\n``, is still
    read); the file keeps one compact JSON line each; blank lines are skipped and every line is
    numbered as in the file; changing its origin, size, head or time, or its key, is refused naming the line."""
    from api.trust.signing import Checkpoint, append_checkpoint

    keys_dir = tmp_path / "keys"
    signer = Keyring(keys_dir).signer()
    keys = read_keyring(keys_dir / "public-keys.json")
    checkpoint = sign_checkpoint(signer, 12, "c" * 64, ORIGIN)
    assert Checkpoint.message(12, "c" * 64, checkpoint.time, ORIGIN) == \
        f"xyd-checkpoint/2\n{ORIGIN}\n12\n{'c' * 64}\n{checkpoint.time}\n".encode()
    assert keys[signer.key_id].verifies(checkpoint.signature, Checkpoint.message(12, "c" * 64, checkpoint.time, ORIGIN))
    assert not keys[signer.key_id].verifies(checkpoint.signature, Checkpoint.message(12, "c" * 64, checkpoint.time))
    assert checkpoint.key_id == signer.key_id and checkpoint.time.endswith("Z") and checkpoint.origin == ORIGIN
    path = tmp_path / "audit" / "c.jsonl"  # its folder made on the first append
    append_checkpoint(path, checkpoint)
    append_checkpoint(path, sign_checkpoint(signer, 13, "d" * 64, ORIGIN))
    lines = path.read_text().splitlines()
    assert json.loads(lines[0]) == checkpoint.as_json() == {
        "format": "xyd-checkpoint/2", "origin": ORIGIN, "size": 12, "head": "c" * 64, "time": checkpoint.time,
        "key_id": signer.key_id, "signature": checkpoint.signature}
    assert " " not in lines[0]
    path.write_text(lines[0] + "\n\n   \n" + lines[1] + "\n")
    read = read_checkpoints(path, keys)
    assert [(c.size, c.head, c.line) for c in read] == [(12, "c" * 64, 1), (13, "d" * 64, 4)]
    assert read[1].describe() == f"the checkpoint of {read[1].time} (line 4, key {signer.key_id})"
    for field, value in (("size", 11), ("head", "e" * 64), ("time", "2020-01-01T00:00:00.000000Z"),
                         ("origin", ORIGIN.replace("decisions", "workflow_events"))):
        path.write_text(lines[0] + "\n" + json.dumps({**json.loads(lines[1]), field: value}) + "\n")
        with pytest.raises(SignatureProblem, match="line 2: the signature does not verify with key .*altered"):
            read_checkpoints(path, keys)
    path.write_text(lines[0] + "\n" + json.dumps({**json.loads(lines[1]), "key_id": "0" * 16}) + "\n")
    with pytest.raises(SignatureProblem, match="line 2: signed by key 0000000000000000, which the keyring does not hold"):
        read_checkpoints(path, keys)
    # a checkpoint of format 1, signed before chains were named, reads as one without an origin
    time_ = "2026-11-30T00:00:00.000000Z"
    legacy = {"format": "xyd-checkpoint/1", "size": 5, "head": "f" * 64, "time": time_, "key_id": signer.key_id,
              "signature": signer.sign(f"xyd-checkpoint/1\n5\n{'f' * 64}\n{time_}\n".encode())}
    path.write_text(json.dumps(legacy) + "\n")
    [old] = read_checkpoints(path, keys)
    assert (old.size, old.origin, old.as_json()) == (5, None, legacy)


@pytest.mark.parametrize("change", [{"format": "xyd-checkpoint/3"}, {"format": "xyd-checkpoint/0"}, {"origin": None},
                                    {"origin": "xyd/a b/decisions"}, {"origin": 7}, {"size": -1}, {"size": 1.0}, {"head": "C" * 64},
                                    {"head": "c" * 63}, {"head": "c" * 65}, {"head": None}, {"time": None},
                                    {"signature": None}])
def test_a_checkpoint_line_of_another_format_or_shape_is_not_a_checkpoint(tmp_path, change):
    keys_dir = tmp_path / "keys"
    signer = Keyring(keys_dir).signer()
    line = {**sign_checkpoint(signer, 12, "c" * 64, ORIGIN).as_json(), **change}
    if change.get("time", 1) is None or change.get("signature", 1) is None:
        line = {k: v for k, v in line.items() if v is not None}
    path = tmp_path / "c.jsonl"
    path.write_text(json.dumps(line) + "\n")
    with pytest.raises(SignatureProblem, match=f"{path}, line 1: not a checkpoint"):
        read_checkpoints(path, read_keyring(keys_dir / "public-keys.json"))


def test_a_checkpoints_file_that_cannot_be_read_is_named(tmp_path):
    for path in (tmp_path / "none.jsonl", tmp_path):
        with pytest.raises(SignatureProblem, match="cannot read the checkpoints"):
            read_checkpoints(path, {})
    (tmp_path / "bytes.jsonl").write_bytes(b"\xff\xfe\n")
    with pytest.raises(SignatureProblem, match="cannot read the checkpoints"):
        read_checkpoints(tmp_path / "bytes.jsonl", {})
    (tmp_path / "empty.jsonl").write_text("")
    assert read_checkpoints(tmp_path / "empty.jsonl", {}) == []


class Clock:
    """The time api.trust.signing reads, moved by hand."""

    def __init__(self):
        self.now = 1000.0

    def monotonic(self):
        return self.now


def test_a_checkpoint_is_due_after_its_decisions_or_its_seconds_and_signs_the_newest_state(tmp_path, monkeypatch):
    """Promise: the checkpointer signs at once when ``every_decisions`` decisions or ``every_seconds``
    seconds have passed since its last checkpoint, never before; it signs the newest state written
    (a late report of an older one changes nothing); with nothing new there is nothing to sign."""
    from api.trust.signing import Checkpointer

    clock = Clock()
    monkeypatch.setattr("api.trust.signing.time", clock)
    keys_dir = tmp_path / "keys"
    path = tmp_path / "c.jsonl"
    checkpointer = Checkpointer(Keyring(keys_dir).signer(), path, every_decisions=3, every_seconds=10.0, origin=ORIGIN)
    keys = read_keyring(keys_dir / "public-keys.json")

    def signed():
        return [(c.size, c.head) for c in read_checkpoints(path, keys)] if path.exists() else []

    assert checkpointer.seconds_until_due() is None and checkpointer.sign_now() is None and signed() == []
    checkpointer.wrote(2, "b" * 64)
    assert signed() == [] and checkpointer.seconds_until_due() == 10.0
    clock.now += 4
    assert checkpointer.seconds_until_due() == 6.0
    checkpointer.wrote(1, "a" * 64)  # reported late: the newest state stays the one of 2
    checkpointer.wrote(3, "c" * 64)  # 3 decisions since the start: due
    assert signed() == [(3, "c" * 64)] and checkpointer.seconds_until_due() is None
    checkpointer.wrote(5, "e" * 64)
    assert signed() == [(3, "c" * 64)] and checkpointer.seconds_until_due() == 10.0
    clock.now += 9.5
    checkpointer.wrote(5, "e" * 64)
    assert signed() == [(3, "c" * 64)]
    clock.now += 1  # 10.5 s since the last checkpoint
    assert checkpointer.seconds_until_due() == 0.0
    checkpointer.wrote(5, "e" * 64)
    assert signed() == [(3, "c" * 64), (5, "e" * 64)]
    checkpointer.wrote(6, "f" * 64)
    clock.now += 10  # exactly its seconds
    checkpointer.wrote(6, "f" * 64)
    assert signed()[-1] == (6, "f" * 64)
    checkpointer.wrote(7, "1" * 64)
    returned = checkpointer.sign_now()
    assert (returned.size, returned.head, returned.key_id) == (7, "1" * 64, checkpointer.signer.key_id)
    assert signed()[-1] == (7, "1" * 64) and checkpointer.sign_now() is None
    checkpointer.wrote(11, "2" * 64)  # a group of 4 at once: past its 3 decisions, so due at once too
    assert signed()[-1] == (11, "2" * 64)
    assert [size for size, _ in signed()] == [3, 5, 6, 7, 11]


def test_a_checkpoint_that_fails_is_tried_again_for_the_same_state_after_its_seconds(tmp_path, monkeypatch):
    """Promise: a failed signature (the disk full) is raised, leaves nothing signed, and the state it
    was for is signed at the next try, which waits ``every_seconds``."""
    from api.trust.signing import Checkpointer

    clock = Clock()
    monkeypatch.setattr("api.trust.signing.time", clock)
    failing = [True]

    def durable():
        if failing[0]:
            raise OSError("no space left on device")

    path = tmp_path / "c.jsonl"
    checkpointer = Checkpointer(Keyring(tmp_path / "keys").signer(), path, every_decisions=2, every_seconds=10.0,
                                make_durable=durable, origin=ORIGIN)
    clock.now += 3
    with pytest.raises(OSError, match="no space"):
        checkpointer.wrote(2, "b" * 64)
    assert not path.exists() and checkpointer.seconds_until_due() == 10.0  # the clock restarted at the failure
    failing[0] = False
    assert checkpointer.sign_now().size == 2
    assert [c.size for c in read_checkpoints(path, read_keyring(tmp_path / "keys" / "public-keys.json"))] == [2]


def test_a_receipt_signs_its_place_and_verifies_the_answer_against_it(tmp_path):
    """Promise: the signature covers ``xyd-receipt/2\\n{seq}\\n{prev_hash}\\n{hash}\\n``; the answer,
    its digest and time and the receipt's record digest must rebuild the content that hashes to the
    signed hash after the signed previous hash; a receipt without its answer is refused in words."""
    from api.examples import PRE_CREDIT
    from api.trust.signing import answer_digest

    signer = Keyring(tmp_path / "keys").signer()
    keys = read_keyring(tmp_path / "keys" / "public-keys.json")
    answer = {k: v for k, v in json.loads(json.dumps(PRE_CREDIT)).items() if k not in ("hash", "receipt")}
    answer |= {"limit_yuan": 80000, "decided_at": "2026-12-07T01:00:00.000000Z"}
    record = "cd" * 32
    content = (f'{{"answer":"{answer_digest(answer)}","decided_at":"2026-12-07T01:00:00.000000Z","format":2,'
               f'"record":"{record}","seq":7}}')
    hash_ = audit.content_hash("ab" * 32, content)
    receipt = make_receipt(signer, 7, "ab" * 32, hash_, record)
    assert receipt == {"format": "xyd-receipt/2", "seq": 7, "prev_hash": "ab" * 32, "hash": hash_, "record": record,
                       "key_id": signer.key_id, "signature": receipt["signature"]}
    message = f"xyd-receipt/2\n7\n{'ab' * 32}\n{hash_}\n".encode()
    assert keys[signer.key_id].verifies(receipt["signature"], message)
    answer |= {"hash": hash_, "receipt": receipt}
    assert verify_receipt(receipt, keys, answer) == {**{k: v for k, v in answer.items() if k != "receipt"}, "seq": 7}
    # the answer's digest is RFC 8785's: a whole number written as a float is the same number
    assert verify_receipt(receipt, keys, {**answer, "limit_yuan": 80000.0})
    for changed in ({**answer, "limit_yuan": 80001}, {**answer, "decided_at": "2026-12-07T01:00:00.000001Z"},
                    {**answer, "request_id": "r-8"}, {**answer, "extra": None}):
        with pytest.raises(SignatureProblem, match="the answer is not the one signed"):
            verify_receipt(receipt, keys, changed)
    with pytest.raises(SignatureProblem, match="the receipt is another decision's"):
        verify_receipt(receipt, keys, {**answer, "hash": "ef" * 32})
    for other_record in ("ef" * 32,):
        with pytest.raises(SignatureProblem, match="the answer is not the one signed"):
            verify_receipt(make_receipt(signer, 7, "ab" * 32, hash_, other_record), keys, answer)
    with pytest.raises(SignatureProblem, match="give the whole answer"):
        verify_receipt(receipt, keys)
    for shaped in ([1], "answer", {**answer, "limit_yuan": 2 ** 60}, {**answer, "limit_yuan": float("nan")}):
        with pytest.raises(SignatureProblem, match="not shaped as a decision"):
            verify_receipt(receipt, keys, shaped)


def test_a_format_1_receipt_signs_its_place_and_verifies_its_content_against_it(tmp_path):
    """Promise: receipts given before migration 0010 still verify: the signature covers
    ``xyd-receipt/1\\n{seq}\\n{prev_hash}\\n{hash}\\n``; the content must hash to the signed hash after
    the signed previous hash and say the signed row; a content that is no decision is refused in words."""
    signer = Keyring(tmp_path / "keys").signer()
    keys = read_keyring(tmp_path / "keys" / "public-keys.json")
    content = json.dumps({"seq": 7, "limit_yuan": 80000})
    receipt = v1_receipt(signer, 7, "ab" * 32, audit.content_hash("ab" * 32, content), content)
    assert verify_receipt(receipt, keys) == {"seq": 7, "limit_yuan": 80000}
    for content, words in (("[1, 2]", "the signed content is not a decision"),
                           ("not json", "the signed content is not a decision"),
                           ("[" * 100_000, "the signed content is not a decision"),
                           (json.dumps({"seq": 8}), "the content says row 8, the signature row 7"),
                           (json.dumps({"seq": "7"}), "the content says row 7, the signature row 7")):
        other = v1_receipt(signer, 7, "ab" * 32, audit.content_hash("ab" * 32, content), content)
        with pytest.raises(SignatureProblem, match=words.replace("[", r"\[")):
            verify_receipt(other, keys)
    other_content = v1_receipt(signer, 7, "ab" * 32, receipt["hash"], json.dumps({"seq": 7, "limit_yuan": 1}))
    with pytest.raises(SignatureProblem, match="the content does not hash to the signed hash"):
        verify_receipt(other_content, keys)
    # a format-1 receipt is not read as a format-2 one, nor the other way round
    with pytest.raises(SignatureProblem, match="signature"):
        verify_receipt({**receipt, "format": "xyd-receipt/2", "record": "cd" * 32}, keys, {"hash": receipt["hash"]})


def signed_answer(receipt: dict) -> dict:
    """The answer a bank received with ``receipt``, as the service shapes it from the signed decision."""
    from api.trust.signing import ANSWER_FIELDS, VERSION_FIELDS

    signed = json.loads(receipt["content"])
    answer = {field: receipt["hash"] if source is None else signed[source] for field, source in ANSWER_FIELDS.items()}
    return {**answer, "versions": {field: signed[field] for field in VERSION_FIELDS},
            "reasons": json.loads(signed["reasons"]), "name": "宜昌某公司", "receipt": receipt}


def test_an_answer_is_held_field_by_field_to_its_format_1_receipt(v1_receipt_and_keys):
    """Promise: with the answer a bank received, every signed field it shows (and each version) must
    be the signed one, and the first that is not is named; a signed field the answer leaves out (or
    a version shown as null) is named too, so an answer cut down to what suits it never verifies; a
    version given as a number is the same version."""
    receipt, keys = v1_receipt_and_keys
    answer = signed_answer(receipt)
    assert verify_receipt(receipt, keys, answer) == json.loads(receipt["content"])
    assert verify_receipt(receipt, keys, {**answer, "versions": {**answer["versions"], "model_version": 1}})
    from api.trust.signing import ANSWER_FIELDS, VERSION_FIELDS

    with pytest.raises(SignatureProblem, match="the answer lacks the signed fields request_id, uscc, pd, .*, reasons:"):
        verify_receipt(receipt, keys, {"limit_yuan": answer["limit_yuan"]})
    for field in (*ANSWER_FIELDS, "versions", "reasons"):
        with pytest.raises(SignatureProblem, match=f"the answer lacks the signed field {field}:"):
            verify_receipt(receipt, keys, {k: v for k, v in answer.items() if k != field})
    for versions in ({**answer["versions"], "model_version": None}, {"model_version": answer["versions"]["model_version"]}):
        with pytest.raises(SignatureProblem, match="the answer lacks the signed field.* versions\\.(policy|model)_version"):
            verify_receipt(receipt, keys, {**answer, "versions": versions})

    for field in ANSWER_FIELDS:
        for value in ("other", None, 0):
            if value == answer[field]:
                continue
            with pytest.raises(SignatureProblem, match=f"the answer's {field} is {value!r}, the signed decision's"):
                verify_receipt(receipt, keys, {**answer, field: value})
    for field in VERSION_FIELDS:
        with pytest.raises(SignatureProblem, match=f"the answer's {field} is 'other', the signed decision's"):
            verify_receipt(receipt, keys, {**answer, "versions": {**answer["versions"], field: "other"}})
    for shaped in ({**answer, "versions": ["model_version"]}, {**answer, "versions": "1"}, ["limit_yuan"]):
        with pytest.raises(SignatureProblem, match="the answer is not shaped as a decision"):
            verify_receipt(receipt, keys, shaped)


def test_an_answers_reasons_may_show_a_part_of_a_format_1_receipts_but_never_another_value(v1_receipt_and_keys):
    """Promise: the answer's reasons may leave out what the signed ones hold, and show as null what
    they do not; any value they do show must be the signed one (1 and 1.0 are one number; a list
    must be whole)."""
    receipt, keys = v1_receipt_and_keys
    answer = signed_answer(receipt)
    reasons = answer["reasons"]
    key, value = next((k, v) for k, v in reasons.items() if isinstance(v, list) and v)

    def verifies(given) -> bool:
        try:
            verify_receipt(receipt, keys, {**answer, "reasons": given})
        except SignatureProblem as problem:
            assert str(problem) == "the answer's reasons differ from the signed decision's"
            return False
        return True

    assert verifies(reasons) and verifies({}) and verifies({key: value}) and verifies({**reasons, "unsigned": None})
    number = next(k for k, v in reasons.items() if isinstance(v, (int, float)) and not isinstance(v, bool))
    assert verifies({number: float(reasons[number])}) and verifies({number: reasons[number] + 0.0})
    assert not verifies({**reasons, "unsigned": 0}) and not verifies({**reasons, "unsigned": "x"})
    assert not verifies({number: reasons[number] + 1}) and not verifies({number: str(reasons[number])})
    assert not verifies({number: None}) and not verifies(None) and not verifies([]) and not verifies("")
    assert not verifies({key: value[:-1]}) and not verifies({key: [*value, value[-1]]}) and not verifies({key: {}})
    assert not verifies({key: list(reversed(value))}) or value == list(reversed(value))
    first = value[0]
    assert verifies({key: [first, *value[1:]]}) and not verifies({key: ["changed", *value[1:]]})
    if isinstance(first, dict):  # a part of each inner object may be shown too
        inner = next(iter(first))
        assert verifies({key: [{inner: first[inner]}, *value[1:]]})
        assert not verifies({key: [{inner: ["changed"]}, *value[1:]]})


# --- the workflow events' chain anchored, the reviews in it, the checkpoints named -----------------

def _file_objections(service, count: int) -> list[dict]:
    from features.registry import FEATURES

    filed = []
    for feature in [f.name for f in FEATURES][:count]:
        answer = service.client.post("/v1/objections", headers=service.headers("operator"),
                                     json={"uscc": service.codes[1], "feature": feature, "grounds": "该指标有误"})
        assert answer.status_code == 201, answer.text
        filed.append(answer.json())
    return filed


def rewrite_and_rehash_event(service, seq: int, change) -> None:
    """Change one workflow event's detail (``change`` of its parsed detail) and recompute every hash
    after it, the events head included: a chain that verifies on its own."""
    def changed(row: dict) -> dict:
        detail = change(json.loads(row["detail"]))
        return {**row, "detail": json.dumps(detail, sort_keys=True, ensure_ascii=False, separators=(",", ":"))}

    _rehashed_from(service, "workflow_events", audit.EVENTS_HEAD, audit.EVENT_HASHED, audit.event_payload, seq,
                   changed, "detail")


def test_a_settlement_edited_and_the_events_rehashed_is_named_against_the_events_checkpoints(signing_service):
    """Promise (SQLite and PostgreSQL): every write of the objection workflow is followed by a signed
    checkpoint of the events chain, so a settlement's outcome changed and every later event rehashed,
    which verifies on its own, is BROKEN against the checkpoints, naming the events still as signed."""
    first, second = _file_objections(signing_service, 2)
    settled = signing_service.client.post(f"/v1/objections/{first['id']}/settlement",
                                          headers=signing_service.headers("operator"),
                                          json={"outcome": "upheld", "note": "记录无误"})
    assert settled.status_code == 200, settled.text
    signed = [c for c in checkpoints(signing_service) if c.origin and c.origin.endswith("/workflow_events")]
    with sessions(make_engine(signing_service.url))() as session:
        assert audit.head(session, audit.EVENTS)[0] == 3 == max(c.size for c in signed)  # filed, filed, settled
        assert session.get(audit.SignedCheckpoint, audit.CHAIN_ROW[audit.EVENTS]).size == 3
    code, said, output = verified_by_the_command_line(signing_service)
    assert code == 0 and said["workflow_events"][0].startswith("workflow events intact: 3 events"), output
    rewrite_and_rehash_event(signing_service, 3, lambda detail: {**detail, "outcome": "removed"})
    with sessions(make_engine(signing_service.url))() as session:
        assert audit.verify_events(session).ok, "a rehashed chain verifies on its own"
    code, said, output = verified_by_the_command_line(signing_service)
    [line] = said["workflow_events"]
    assert code == 1 and line.startswith("workflow events BROKEN at event 3"), output
    assert "rewritten, reordered or removed and the chain rehashed" in line and "events 1–2 are as signed" in line
    assert said["decisions"][0].startswith("audit chain intact"), output


def _a_referral(service) -> dict:
    for i in range(1, len(service.codes)):
        answer = service.ask(code=service.codes[i], authorization=f"valid{i}")
        if answer.status_code == 200 and answer.json()["decision"] in ("refer", "decline"):
            return answer.json()
    raise AssertionError("the test city refers or declines none of its enterprises")


def test_a_review_edited_deleted_or_added_behind_the_service_is_named(signing_service):
    """Promise (SQLite and PostgreSQL): a bank's review enters the workflow events chain with the
    review itself, and is signed with it; a review whose outcome, limit or reviewer is edited in the
    database, a review deleted, or one added without the service, is NOT VERIFIED, naming the decision."""
    [other] = decide(signing_service, 1)
    referred = _a_referral(signing_service)
    assert referred["request_id"] != other["request_id"]
    recorded = signing_service.client.post(f"/v1/decisions/{referred['request_id']}/review",
                                           headers=signing_service.headers("bank"),
                                           json={"outcome": "approve", "limit_yuan": 150_000, "reviewer": "信贷员 王五"})
    assert recorded.status_code == 201, recorded.text
    signed = [c for c in checkpoints(signing_service) if c.origin and c.origin.endswith("/workflow_events")]
    assert [c.size for c in signed] == [1]
    code, said, output = verified_by_the_command_line(signing_service)
    assert code == 0 and "workflow events intact: 1 events" in said["workflow_events"][0], output
    request_id = referred["request_id"]
    for change, undo, found in (
            ("UPDATE reviews SET limit_yuan = 900000", "UPDATE reviews SET limit_yuan = 150000", "its limit_yuan differ"),
            ("UPDATE reviews SET outcome = 'decline', limit_yuan = NULL",
             "UPDATE reviews SET outcome = 'approve', limit_yuan = 150000", "its outcome, limit_yuan differ"),
            ("UPDATE reviews SET reviewer = '信贷员 赵六'", "UPDATE reviews SET reviewer = '信贷员 王五'", "its reviewer differ")):
        execute(signing_service, change)
        code, said, output = verified_by_the_command_line(signing_service)
        [line] = said["workflow_events"]
        assert code == 1 and line.startswith(f"workflow events NOT VERIFIED (objection or decision {request_id})"), output
        assert found in line and "it was edited" in line, output
        execute(signing_service, undo)
        assert verified_by_the_command_line(signing_service)[0] == 0
    engine = make_engine(signing_service.url)
    with engine.begin() as connection:
        kept = dict(connection.execute(text("SELECT * FROM reviews")).one()._mapping)
        connection.execute(text("DELETE FROM reviews"))
    code, said, output = verified_by_the_command_line(signing_service)
    assert code == 1 and "it was deleted" in said["workflow_events"][0], output
    from api.db.tables import Review

    with engine.begin() as connection:
        connection.execute(Review.__table__.insert(), [kept])
        connection.execute(Review.__table__.insert(), [{**kept, "request_id": other["request_id"]}])
    code, said, output = verified_by_the_command_line(signing_service)
    assert code == 1 and "no event of the chain records it: it was added outside the service" in output, output
    assert other["request_id"] in said["workflow_events"][0]
    engine.dispose()


def test_checkpoints_of_another_databases_chains_are_refused_by_their_origin(signing_service, tmp_path):
    """Promise: a checkpoint names its chain's origin (this database's identity and the chain), so a
    checkpoints file of another platform's database, even signed by a key this keyring holds, is
    refused by name, never read as vouching for this one's rows."""
    from api.db.engine import upgrade
    from api.trust.signing import Keyring, append_checkpoint

    decide(signing_service, 2)
    elsewhere = f"sqlite:///{tmp_path}/elsewhere.db"
    upgrade(elsewhere)
    foreign_origin = decisions_origin(make_engine(elsewhere))
    assert foreign_origin != decisions_origin(make_engine(signing_service.url))
    assert foreign_origin.startswith("xyd/") and foreign_origin.endswith("/decisions")
    signer = Keyring(signing_service.home / "keys").signer()
    path = signing_service.home / "audit" / "checkpoints.jsonl"
    append_checkpoint(path, sign_checkpoint(signer, 2, "e" * 64, foreign_origin))
    code, said, output = verified_by_the_command_line(signing_service)
    assert code == 1 and all(said[chain.table][0].startswith(f"{chain.named} NOT VERIFIED") for chain in CHAINS), output
    assert f"names the chain {foreign_origin}, not one of this database's" in output, output
    assert "another database's" in output


def test_reviews_recorded_before_the_chain_held_them_enter_it_when_the_database_is_migrated(tmp_path):
    """Promise: migrating a database whose banks recorded reviews before reviews were chained puts
    each of them in the workflow events chain, in the order they were recorded, so that from then on
    an edit to any of them is named; the chain verifies, and the database has an identity."""
    from alembic import command
    from alembic.config import Config

    from api.db.engine import MIGRATIONS, upgrade

    url = f"sqlite:///{tmp_path}/before.db"
    config = Config()
    config.set_main_option("script_location", str(MIGRATIONS))
    config.attributes["url"] = url
    command.upgrade(config, "0008")
    engine = make_engine(url)
    with engine.begin() as connection:
        connection.execute(text("INSERT INTO api_clients (id, name, role, key_hash, key_prefix, disabled, created_at) VALUES "
                                "(1, '甲银行', 'bank', :hash, 'xyd_abc', :disabled, '2026-11-01T00:00:00.000000Z')"),
                           {"hash": "0" * 64, "disabled": False})
    with engine.begin() as connection:  # decisions as the service wrote them then (format 1)
        previous = audit.GENESIS
        for n, decision in ((1, "refer"), (2, "decline")):
            row = {**decision_row(n, chain_format=1, decision=decision), "seq": n,
                   "created_at": f"2026-11-01T0{n}:00:00.000000Z"}
            row |= {"prev_hash": previous, "hash": audit.chain_hash(previous, row)}
            connection.execute(text(f"INSERT INTO decisions ({', '.join(row)}) VALUES ({', '.join(':' + k for k in row)})"),
                               row)
            previous = row["hash"]
        connection.execute(text("UPDATE audit_head SET last_seq = 2, last_hash = :hash WHERE id = 1"), {"hash": previous})
    with engine.begin() as connection:
        for request_id, outcome, limit, at in (("r-2", "decline", None, "2026-11-02T09:00:00.000000Z"),
                                               ("r-1", "approve", 80_000, "2026-11-03T09:00:00.000000Z")):
            connection.execute(text("INSERT INTO reviews (request_id, client_id, outcome, limit_yuan, reviewer, note, "
                                    "reviewed_at) VALUES (:r, 1, :o, :l, '信贷员', NULL, :at)"),
                               {"r": request_id, "o": outcome, "l": limit, "at": at})
    engine.dispose()
    upgrade(url)
    engine = make_engine(url)
    with sessions(engine)() as session:
        assert audit.verify_events(session).ok and audit.verify(session).ok
        events = session.execute(text("SELECT kind, subject, detail FROM workflow_events ORDER BY seq")).all()
        assert [(kind, subject) for kind, subject, _ in events] == [(audit.REVIEWED, "r-2"), (audit.REVIEWED, "r-1")]
        assert json.loads(events[1].detail)["limit_yuan"] == 80_000
        assert audit.origin(session, audit.EVENTS).endswith("/workflow_events")
    # the decisions written before stay of format 1 and verify as they did, the new ones after them
    from api.db.engine import write_transaction

    with write_transaction(engine) as connection:
        [new] = audit.append(connection, [decision_row(3)])
    assert new.chain_format == 2 and new.record
    with sessions(engine)() as session:
        assert audit.verify(session).ok and audit.verify(session).rows == 3
        assert session.execute(text("SELECT chain_format FROM decisions ORDER BY seq")).scalars().all() == [1, 1, 2]
    with engine.begin() as connection:
        connection.execute(text("UPDATE reviews SET limit_yuan = 90000 WHERE request_id = 'r-1'"))
        connection.execute(text("UPDATE decisions SET limit_yuan = 1 WHERE seq = 1"))
    with sessions(engine)() as session:
        edited = audit.verify_events(session)
        assert audit.verify(session).first_broken_seq == 1  # an old row edited is named as before
    assert not edited.ok and edited.first_broken_request == "r-1" and "limit_yuan" in edited.problem
    engine.dispose()


def test_a_keyring_replaced_beside_the_services_signing_key_is_refused(signing_service, tmp_path):
    """Promise: `xyd audit verify` with the service's own keyring refuses one that does not name the
    key the service signs with as current: someone who rewrites the chain, signs new checkpoints with
    a key of their own and puts its keyring in place of the service's is named, not believed."""
    import shutil

    from api.trust.signing import Keyring, append_checkpoint

    decide(signing_service, 3)
    assert verified_by_the_command_line(signing_service)[0] == 0
    keys_dir = signing_service.home / "keys"
    kept = (keys_dir / "public-keys.json").read_text("utf-8")
    theirs = Keyring(tmp_path / "theirs")
    forger = theirs.signer()
    path = signing_service.home / "audit" / "checkpoints.jsonl"
    original = path.read_text("utf-8")
    with sessions(make_engine(signing_service.url))() as session:
        size, head = audit.head(session)
        origin = audit.origin(session, audit.DECISIONS)
    path.write_text("", "utf-8")
    append_checkpoint(path, sign_checkpoint(forger, size, head, origin))
    shutil.copy(tmp_path / "theirs" / "public-keys.json", keys_dir / "public-keys.json")
    code, said, output = verified_by_the_command_line(signing_service)
    assert code == 1 and "does not hold the key the service signs with" in said["decisions"][0], output
    # a keyring that lists the service's key but names another as current is refused too
    document = json.loads(kept)
    document["keys"].append(json.loads((tmp_path / "theirs" / "public-keys.json").read_text())["keys"][0])
    document["current"] = forger.key_id
    (keys_dir / "public-keys.json").write_text(json.dumps(document), "utf-8")
    code, said, output = verified_by_the_command_line(signing_service)
    assert code == 1 and f"names {forger.key_id} as current, but the service signs with" in output, output
    (keys_dir / "public-keys.json").write_text(kept, "utf-8")
    path.write_text(original, "utf-8")
    assert verified_by_the_command_line(signing_service)[0] == 0


def test_what_a_key_signs_after_its_retirement_is_refused_naming_both_times(tmp_path, monkeypatch):
    """Promise: a rotated key's private half is deleted, so a checkpoint or a receipt it signed after
    its retirement (beyond a minute's grace for a signature under way at the rotation) means a copy
    survived: refused, with the time it was signed and the time the key was retired."""
    from api.examples import PRE_CREDIT
    from api.trust import signing
    from api.trust.signing import answer_digest, append_checkpoint, make_receipt

    keys_dir = tmp_path / "keys"
    keyring = Keyring(keys_dir)
    old = keyring.signer()
    keyring.generate()  # the rotation: old is retired now
    keys = read_keyring(keys_dir / "public-keys.json")
    retired = dt.datetime.fromisoformat(keys[old.key_id].retired_at.replace("Z", "+00:00"))

    def stamp(seconds: float) -> str:
        return (retired + dt.timedelta(seconds=seconds)).strftime("%Y-%m-%dT%H:%M:%S.%fZ")

    path = tmp_path / "c.jsonl"
    for seconds, refused in ((-5, False), (signing.ROTATION_GRACE_SECONDS - 1, False),
                             (signing.ROTATION_GRACE_SECONDS + 1, True), (86_400, True)):
        monkeypatch.setattr(signing, "now_iso", lambda: stamp(seconds))
        path.write_text("")
        append_checkpoint(path, sign_checkpoint(old, 3, "a" * 64, ORIGIN))
        answer = {**json.loads(json.dumps(PRE_CREDIT)), "decided_at": stamp(seconds)}
        del answer["receipt"]
        content = audit.content_v2(3, stamp(seconds), answer_digest(answer), "c" * 64)
        receipt = make_receipt(old, 3, "b" * 64, audit.content_hash("b" * 64, content), "c" * 64)
        answer["hash"] = receipt["hash"]
        content = json.dumps({"seq": 3, "created_at": stamp(seconds)})
        old_receipt = v1_receipt(old, 3, "b" * 64, audit.content_hash("b" * 64, content), content)
        if not refused:
            assert read_checkpoints(path, keys) and verify_receipt(receipt, keys, answer)["seq"] == 3
            assert verify_receipt(old_receipt, keys)["seq"] == 3
            continue
        words = (f"signed at {stamp(seconds)} by key {old.key_id}, which was retired at "
                 f"{keys[old.key_id].retired_at}: a retired key signs nothing")
        with pytest.raises(SignatureProblem, match=f"line 1: the checkpoint was {re.escape(words)}"):
            read_checkpoints(path, keys)
        with pytest.raises(SignatureProblem, match=f"the receipt was {re.escape(words)}"):
            verify_receipt(receipt, keys, answer)
        with pytest.raises(SignatureProblem, match=f"the receipt was {re.escape(words)}"):
            verify_receipt(old_receipt, keys)


def test_rows_no_checkpoint_covers_are_counted_and_not_verified_once_older_than_the_grace(signing_service,
                                                                                          monkeypatch):
    """Promise: the service signs within seconds of writing, so rows newer than the newest checkpoint
    are said as not yet covered, with their count, and once the oldest of them is older than
    XYD_CHECKPOINT_GRACE_SECONDS, NOT VERIFIED: their checkpoints were lost or never made."""
    decide(signing_service, 3)  # a checkpoint every 2 decisions: the 3rd is not covered yet
    code, said, output = verified_by_the_command_line(signing_service)
    assert code == 0 and "(the newest vouches for 2; 1 newer not yet covered by a checkpoint)" in said["decisions"][0], output
    time.sleep(0.05)
    monkeypatch.setenv("XYD_CHECKPOINT_GRACE_SECONDS", "0.01")
    code, said, output = verified_by_the_command_line(signing_service)
    [line] = said["decisions"]
    assert code == 1 and line.startswith("audit chain NOT VERIFIED: 1 rows newer than the newest checkpoint"), output
    assert "their checkpoints were lost or never made" in line and "xyd audit checkpoint sign" in line
    assert said["workflow_events"][0].startswith("workflow events intact"), output  # no event written, none uncovered
    assert run_cli(signing_service, "audit", "checkpoint", "sign").exit_code == 0
    assert verified_by_the_command_line(signing_service)[0] == 0


def test_the_service_signs_at_its_start_only_an_events_chain_never_signed(tmp_path):
    """Promise: at its start the service signs the events chained before the chain was anchored
    (the reviews migration 0009 chained), once; events a later signature missed are never signed
    unseen by a restart: verify keeps calling them not yet covered."""
    from api.db.engine import upgrade, writing
    from api.trust.anchor import sign_events

    url = f"sqlite:///{tmp_path}/x.db"
    upgrade(url)
    engine = make_engine(url)
    factory = sessions(engine)

    def event(n: int) -> None:
        with writing(factory) as session:
            audit.lock_events(session)
            audit.append_event(session, "objection.filed", f"o-{n}", "91420502MA4K0G2B2X", None, {"n": n})

    event(1)
    first = sign_events(engine, tmp_path, first_only=True)
    assert first is not None and first.size == 1 and first.origin.endswith("/workflow_events")
    event(2)
    assert sign_events(engine, tmp_path, first_only=True) is None  # signed before: a restart vouches for nothing
    assert sign_events(engine, tmp_path).size == 2  # the next write's signature covers it
    assert sign_events(engine, tmp_path) is None  # nothing new
    engine.dispose()


def test_the_readmes_recipe_verifies_a_receipt_with_no_software_of_ours(signing_service, tmp_path):
    """Promise (README, "For a bank: verifying a receipt offline"): the three steps, done with an
    RFC 8785 library, SHA-256 and OpenSSL's command exactly as the README writes it, verify an
    answer as received; a field changed, or a signature over another place, fails them."""
    import base64
    import subprocess

    import rfc8785

    readme = (Path(__file__).resolve().parents[2] / "README.md").read_text(encoding="utf-8")
    recipe = readme[readme.index("**For a bank: verifying a receipt offline.**"):readme.index("**Limits.**")]
    command = re.search(r"`(openssl pkeyutl [^`]+)`", recipe).group(1)
    template = re.search(r'`(\{"answer":"A"[^`]+)`', recipe).group(1)
    [answer] = decide(signing_service, 1)
    receipt = answer["receipt"]

    def rebuilt_hash(answer: dict) -> str:
        unsigned = {k: v for k, v in answer.items() if k not in ("hash", "receipt", "decided_at")}
        digest = hashlib.sha256(rfc8785.dumps(unsigned)).hexdigest()
        content = (template.replace('"A"', f'"{digest}"').replace('"T"', f'"{answer["decided_at"]}"')
                   .replace('"R"', f'"{receipt["record"]}"').replace(":N}", f":{receipt['seq']}}}"))
        return hashlib.sha256(f"{receipt['prev_hash']}\n{content}".encode("utf-8")).hexdigest()

    assert rebuilt_hash(answer) == receipt["hash"] == answer["hash"]
    assert rebuilt_hash({**answer, "limit_yuan": answer["limit_yuan"] + 1}) != receipt["hash"]
    assert rebuilt_hash({**answer, "name": "另一家公司"}) != receipt["hash"]
    [key] = [k for k in json.loads((signing_service.home / "keys" / "public-keys.json").read_text())["keys"]
             if k["key_id"] == receipt["key_id"]]
    (tmp_path / "key.pem").write_text(key["public_key_pem"])
    (tmp_path / "signature.bin").write_bytes(base64.b64decode(receipt["signature"]))

    def openssl_verifies(seq: int) -> bool:
        (tmp_path / "message.txt").write_text(f"xyd-receipt/2\n{seq}\n{receipt['prev_hash']}\n{receipt['hash']}\n")
        return subprocess.run(command, shell=True, cwd=tmp_path, capture_output=True).returncode == 0

    assert openssl_verifies(receipt["seq"]) and not openssl_verifies(receipt["seq"] + 1)


ANY_JSON = st.recursive(
    st.none() | st.booleans() | st.integers(-(2 ** 60), 2 ** 60) | st.floats() | st.text(max_size=12),
    lambda inner: st.lists(inner, max_size=4) | st.dictionaries(st.text(max_size=6), inner, max_size=4),
    max_leaves=25)


@hypothesis_settings(max_examples=600, deadline=None)
@given(value=ANY_JSON)
@example(value={"name": "\ud800"})  # a lone surrogate, as json.loads gives "\\ud800"
@example(value={"b": 1e-07, "a": [80000.0, 1e21, -0.0, 2 ** 53], "é": "\u2028"})
@example(value=[float(2 ** 53), -float(2 ** 60), 1e16])  # whole floats past 2**53: found by this test, 2026-12-08
def test_the_answers_canonical_form_is_rfc_8785s_for_any_json(value):
    """Promise: an answer is hashed over its RFC 8785 form, which a bank computes with any JCS
    library: the quick way the service takes gives the same bytes as the ``rfc8785`` library for
    any JSON (whole floats, exponents, keys beyond ASCII, text with control characters), and
    refuses, in words, what JCS refuses (numbers beyond 2**53, NaN, infinities, lone surrogates)."""
    import rfc8785

    from api.trust.signing import canonical_json

    try:
        expected = rfc8785.dumps(value)
    except (rfc8785.CanonicalizationError, UnicodeEncodeError):
        expected = None
    if expected is None:
        with pytest.raises(ValueError, match="it cannot be canonicalised"):
            canonical_json(value)
    else:
        assert canonical_json(value) == expected


def test_a_saved_batch_answer_is_verified_item_by_item_from_the_command_line(signing_service, tmp_path):
    """Promise (README): `xyd audit verify-receipt` takes a batch answer as received, verifies each
    decided item's receipt against that item, and names the item that was changed."""
    items = [{"uscc": signing_service.codes[i], "authorization_id": signing_service.authorizations[f"valid{i}"]}
             for i in (4, 5)]
    items.insert(1, {"uscc": "bad", "authorization_id": "x"})
    response = signing_service.client.post("/v1/pre-credit/batch", json={"items": items},
                                           headers=signing_service.headers("bank"))
    assert response.status_code == 200, response.text
    batch = response.json()
    assert [r["decision"] is not None for r in batch["results"]] == [True, False, True]
    saved = tmp_path / "batch.json"
    saved.write_text(response.text, "utf-8")  # the bytes as received
    published = signing_service.home / "keys" / "public-keys.json"
    good = run_cli(signing_service, "audit", "verify-receipt", str(saved), "--keys", str(published))
    assert good.exit_code == 0 and good.output.count("verified: row") == 2, good.output
    assert "item 0: verified" in good.output and "item 2: verified" in good.output
    batch["results"][2]["decision"]["reasons"]["margin"] += 0.5
    saved.write_text(json.dumps(batch, ensure_ascii=False), "utf-8")
    bad = run_cli(signing_service, "audit", "verify-receipt", str(saved), "--keys", str(published))
    assert bad.exit_code == 1 and "item 0: verified" in bad.output
    assert "item 2: NOT VERIFIED: the answer is not the one signed" in bad.output
