"""``xyd clients``, ``xyd authorizations``, ``xyd audit``, ``xyd serve``: running the service."""

from __future__ import annotations

import datetime as dt
import hashlib
import os
import socket
import subprocess
import sys
import tempfile
from pathlib import Path

import click
from rich.table import Table

from api.access import clients as client_store
from api.cli import InputError, output_console, print_json
from api.db.engine import make_engine, sessions, upgrade, writing
from api.precredit import repository
from api.settings import settings
from api.trust import audit

DATE = click.DateTime(formats=["%Y-%m-%d"])


def database():
    """Sessions on the configured database, migrated to the newest schema."""
    url = settings().database
    upgrade(url)
    return sessions(make_engine(url))


@click.group(short_help="API clients: banks, regulators and operators.")
def clients() -> None:
    """API clients: banks, regulators and operators."""


@clients.command("add")
@click.option("--role", type=click.Choice(client_store.ROLES), required=True)
@click.option("--name", required=True, help="The bank's or department's name.")
def add_client(role: str, name: str) -> None:
    """Create a client and print its API key, once: only its hash is kept.

    Example: xyd clients add --role bank --name '宜昌银行'"""
    with writing(database()) as session:
        try:
            client, key = client_store.add_client(session, name, role)
        except ValueError as error:
            raise InputError(str(error)) from None
    click.echo(f"client {client.id} ({role}, {client.name})\nAPI key (shown once, keep it safe): {key}")


@clients.command("list")
@click.option("--json", "as_json", is_flag=True, help="A JSON list of objects (id, role, name, key_prefix, disabled, "
                                                        "created_at) instead of a table.")
def list_clients(as_json: bool) -> None:
    """Every client: id, role, name, key prefix, disabled.

    Example: xyd clients list --json"""
    with database()() as session:
        found = [{"id": c.id, "role": c.role, "name": c.name, "key_prefix": c.key_prefix, "disabled": bool(c.disabled),
                  "created_at": c.created_at} for c in client_store.list_clients(session)]
    if as_json:
        print_json(found)
        return
    table = Table(title="API clients")
    for header in ("id", "role", "name", "key", "disabled", "created"):
        table.add_column(header, overflow="fold")
    for c in found:
        table.add_row(str(c["id"]), c["role"], c["name"], c["key_prefix"] + "…", "yes" if c["disabled"] else "",
                      c["created_at"])
    output_console().print(table)


@clients.command("disable")
@click.argument("client_id", type=int)
@click.option("--enable", is_flag=True, help="Enable it again instead.")
def disable_client(client_id: int, enable: bool) -> None:
    """Disable (or enable) a client: its key stops working within seconds.

    Example: xyd clients disable 3"""
    with writing(database()) as session:
        if client_store.set_disabled(session, client_id, not enable) is None:
            raise InputError(f"no client {client_id}")
    click.echo(f"client {client_id} {'enabled' if enable else 'disabled'}")


@click.group(short_help="Enterprises' authorisations (授权书) for banks.")
def authorizations() -> None:
    """Enterprises' authorisations (授权书) for banks."""


@authorizations.command("add")
@click.option("--uscc", required=True)
@click.option("--bank-id", type=int, required=True, help="The bank's client id (`xyd clients list`).")
@click.option("--purpose", default="信易贷预授信", show_default=True)
@click.option("--scope", "data_scope", default="纳税,水电气,不动产,知识产权,司法,行政处罚,信用承诺", show_default=True)
@click.option("--valid-from", type=DATE, help="Default today, in China.")
@click.option("--valid-until", type=DATE, help="Default a year from valid-from.")
@click.option("--template-version", default="全国中小企业融资综合信用服务平台授权书模板-2024", show_default=True)
@click.option("--document", type=click.Path(exists=True, dir_okay=False, path_type=Path),
              help="The signed letter; its SHA-256 is kept.")
@click.option("--quiet", "-q", is_flag=True, help="Print the authorisation's id alone (for a script: ID=$(…)).")
def add_authorization(uscc: str, bank_id: int, purpose: str, data_scope: str, valid_from, valid_until,
                      template_version: str, document: Path | None, quiet: bool) -> None:
    """Register an enterprise's authorisation for one bank.

    Example: xyd authorizations add --uscc 91420502EFPX14RX05 --bank-id 1 --document letter.pdf"""
    from api.common.refusals import Refusal
    from api.precredit.decide import normalised_code, today_in_china

    start = valid_from.date() if valid_from else today_in_china()
    until = valid_until.date() if valid_until else start + dt.timedelta(days=364)
    digest = hashlib.sha256(document.read_bytes() if document else f"{uscc}|{bank_id}|{start}".encode()).hexdigest()
    try:
        code = normalised_code(uscc)
        with writing(database()) as session:
            record = repository.add_authorization(session, code, bank_id, purpose, data_scope, start, until,
                                                  template_version, digest)
    except (ValueError, Refusal) as error:
        raise InputError(str(error)) from None
    click.echo(record.id if quiet else f"authorisation {record.id}: {record.uscc} → bank {bank_id}, "
                                       f"valid {start} to {until}")


@authorizations.command("revoke")
@click.argument("authorization_id")
def revoke_authorization(authorization_id: str) -> None:
    """Revoke an authorisation from now on.

    Example: xyd authorizations revoke 5301ff58-e893-4ee5-9358-4eb900c6c360"""
    with writing(database()) as session:
        if repository.revoke_authorization(session, authorization_id) is None:
            raise InputError(f"no authorisation {authorization_id}")
    click.echo(f"authorisation {authorization_id} revoked")


@authorizations.command("list")
@click.option("--uscc")
@click.option("--bank-id", type=int)
@click.option("--json", "as_json", is_flag=True, help='One JSON object, {"count": all that match, "items": [the '
                                                        'first 500, each as the API lists them]}, instead of a table.')
def list_authorizations(uscc: str | None, bank_id: int | None, as_json: bool) -> None:
    """Authorisations, newest last (the first 500; the count says how many match).

    Example: xyd authorizations list --bank-id 1"""
    with database()() as session:
        count, rows = repository.list_authorizations(session, uscc, bank_id, limit=500)
        items = [{"id": a.id, "uscc": a.uscc, "bank_id": a.bank_id, "valid_from": a.valid_from,
                  "valid_until": a.valid_until, "revoked_at": a.revoked_at, "purpose": a.purpose} for a in rows]
    if as_json:
        print_json({"count": count, "items": items})
        return
    table = Table(title="authorisations")
    for header in ("id", "uscc", "bank", "valid", "revoked", "purpose"):
        table.add_column(header, overflow="fold")
    for a in items:
        table.add_row(a["id"], a["uscc"], str(a["bank_id"]), f"{a['valid_from']} … {a['valid_until']}",
                      a["revoked_at"] or "", a["purpose"])
    table.caption = f"{count:,} in all"
    output_console().print(table)


@click.group("audit", short_help="Audit chain, checkpoints, receipts, keys.")
def audit_group() -> None:
    """The decisions' audit chain: verify it, export its signed checkpoints, verify a bank's
    receipt, rotate the signing key."""


def _keyring_file(keys: Path | None) -> Path:
    return keys or settings().keys_directory / "public-keys.json"


@audit_group.command("verify")
@click.option("--checkpoints", "checkpoints_file", type=click.Path(dir_okay=False, path_type=Path),
              help="Signed checkpoints to hold the chain against (default the service's own file under "
                   "XYD_HOME/audit, when there is one).")
@click.option("--keys", type=click.Path(dir_okay=False, path_type=Path),
              help="The public keyring the checkpoints are verified with (default XYD_HOME/keys/public-keys.json).")
def verify(checkpoints_file: Path | None, keys: Path | None) -> None:
    """Recompute the hash chain of every decision, and the chain of workflow events (objections
    filed, settled, republished; the banks' reviews, each held to its event), and hold each against
    its signed checkpoints; exit 1 naming the first broken row, the rows deleted or rewritten since a
    checkpoint, or checkpoints that are not this database's.

    Example: xyd audit verify --checkpoints checkpoints-2026-12.jsonl --keys xyd-public-keys.json"""
    path, checkpoints = _checkpoints_to_hold(checkpoints_file, keys)
    with database()() as session:
        by_chain, foreign = audit.sorted_checkpoints(session, checkpoints)
        if foreign:
            _neither_verified(f"{foreign} (refused, {path})")
        result = audit.verify(session, checkpoints=by_chain[audit.DECISIONS])
        events = audit.verify_events(session, checkpoints=by_chain[audit.EVENTS])
    if path is None and (result.rows or events.rows) and _keyring_file(None).exists():
        _neither_verified(f"the service signs with a key under {settings().keys_directory}, but its checkpoints "
                          f"({settings().checkpoints_file}) are gone; hold the chains against an exported copy "
                          "(--checkpoints FILE --keys FILE)")
    ok = _said(events, CHAIN_NAMES[1], "events (objections filed, settled, republished; reviews recorded)",
               "event", "objection or decision", path)
    ok = _said(result, CHAIN_NAMES[0], "decisions", "row", "request", path) and ok
    if not ok:
        sys.exit(1)


CHAIN_NAMES = ("audit chain", "workflow events")
"""How ``xyd audit verify`` names the decisions' chain and the workflow events' in its lines."""


def _neither_verified(why: str) -> None:
    """What the chains are held against cannot be trusted: a line for each chain, exit 1."""
    for name in CHAIN_NAMES:
        click.echo(f"{name} NOT VERIFIED: {why}")
    sys.exit(1)


def _said(result, chain: str, rows: str, row: str, subject: str, path: Path | None) -> bool:
    """Say what a chain's verification found, in one line; whether it holds."""
    against = (f"; held against {result.checkpoints:,} signed checkpoints of {path} (the newest vouches for "
               f"{result.covered:,}{_not_yet_covered(result)})" if path else "; no signed checkpoints to hold it against")
    stale = _uncovered_too_long(result)
    if stale:
        click.echo(f"{chain} NOT VERIFIED: {stale}{against}")
        return False
    if result.ok:
        click.echo(f"{chain} intact: {result.rows:,} {rows}{against}")
        return True
    named = f" ({subject} {result.first_broken_request})" if result.first_broken_request else ""
    if result.first_broken_seq is None:  # every row holds, but what vouches for them does not
        click.echo(f"{chain} NOT VERIFIED{named}: {result.problem}; the {result.rows:,} {row}s hash as a chain{against}")
        return False
    click.echo(f"{chain} BROKEN at {row} {result.first_broken_seq}{named}: {result.problem}; "
               f"{result.rows:,} {row}s before it are intact{against}")
    return False


def _uncovered_too_long(result) -> str | None:
    """Why rows no checkpoint covers cannot be vouched for: the oldest of them was written longer ago
    than the grace (XYD_CHECKPOINT_GRACE_SECONDS) while the service signs within seconds, so their
    checkpoints were lost or never made. None when there are none, or they are recent."""
    import datetime as dt

    if not result.ok or result.uncovered_since is None:
        return None
    written = dt.datetime.fromisoformat(result.uncovered_since.replace("Z", "+00:00"))
    waited = (dt.datetime.now(dt.timezone.utc) - written).total_seconds()
    grace = settings().checkpoint_grace_seconds
    if waited <= grace:
        return None
    return (f"{result.rows - result.covered:,} rows newer than the newest checkpoint, the oldest written at "
            f"{result.uncovered_since}, {waited:,.0f} s ago (more than the {grace:,.0f} s the service may take to "
            "sign them): their checkpoints were lost or never made; check them, then `xyd audit checkpoint sign`")


def _not_yet_covered(result) -> str:
    waiting = result.rows - result.covered
    return f"; {waiting:,} newer not yet covered by a checkpoint" if result.ok and waiting > 0 else ""


def _checkpoints_to_hold(named: Path | None, keys: Path | None) -> tuple[Path | None, list | None]:
    """The checkpoints the chain is held against: the file named (a problem with it: exit 2), or
    the service's own when it has one (tampered with: exit 1, the chain is not vouched for)."""
    from api.trust.signing import Keyring, SignatureProblem, read_checkpoints, read_keyring

    default = settings().checkpoints_file
    path = named or (default if default.exists() else None)
    if path is None:
        return None, None  # nothing to hold it against: the chain is walked alone
    try:
        if keys is None and settings().keys_directory.exists():  # the service's own keyring: is it the one it signs with?
            Keyring(settings().keys_directory).check_signs_with_a_listed_key()
        return path, read_checkpoints(path, read_keyring(_keyring_file(keys)))
    except SignatureProblem as error:
        if named is None:
            _neither_verified(str(error))
        raise InputError(str(error)) from None


@audit_group.group("checkpoint", short_help="The chain's signed checkpoints.")
def checkpoint_group() -> None:
    """The chain's signed checkpoints (size and head, Ed25519), kept outside the database."""


@checkpoint_group.command("export")
@click.option("--out", type=click.Path(dir_okay=False, path_type=Path), required=True,
              help="Where to write them (a file the regulator or the province keeps).")
def export_checkpoints(out: Path) -> None:
    """Copy every signed checkpoint, each verified first, with the public keyring beside them.

    Example: xyd audit checkpoint export --out checkpoints-2026-12.jsonl"""
    import json

    from api.trust.signing import SignatureProblem, read_checkpoints, read_keyring

    source = settings().checkpoints_file
    try:
        keyring = read_keyring(_keyring_file(None))
        checkpoints = read_checkpoints(source, keyring) if source.exists() else []
    except SignatureProblem as error:
        raise InputError(str(error)) from None
    if not checkpoints:
        raise InputError(f"no checkpoints yet in {source}: the service signs one once it has written decisions")
    keys_out = out.with_name(out.stem + ".keys.json")
    try:
        out.parent.mkdir(parents=True, exist_ok=True)
        out.write_text("".join(json.dumps(c.as_json(), separators=(",", ":")) + "\n" for c in checkpoints),
                       encoding="utf-8")
        keys_out.write_text(_keyring_file(None).read_text(encoding="utf-8"), encoding="utf-8")
    except OSError as error:
        raise InputError(f"cannot write the export: {error}") from None
    of_decisions = [c for c in checkpoints if c.origin is None or c.origin.endswith("/" + audit.DECISIONS)]
    latest = max(of_decisions, key=lambda c: c.size, default=None)
    newest = f"the newest: {latest.size:,} decisions at {latest.time}" if latest else "none of the decisions yet"
    click.echo(f"{len(checkpoints):,} checkpoints → {out} ({newest}); public keys → {keys_out}")


@checkpoint_group.command("sign")
def sign_checkpoint() -> None:
    """Sign a checkpoint of the chain as it stands now (the service signs its own as it writes;
    this one is for before a maintenance or a backup), once it verifies against the service's
    checkpoints so far: a chain rewritten since is never vouched for.

    Example: xyd audit checkpoint sign"""
    from api.trust.anchor import sign_events
    from api.trust.signing import Keyring, append_checkpoint, sign_checkpoint as signed

    _, checkpoints = _checkpoints_to_hold(None, None)
    factory = database()
    with factory() as session:
        by_chain, foreign = audit.sorted_checkpoints(session, checkpoints)
        if foreign:
            click.echo(f"not signed: {foreign}")
            sys.exit(1)
        result = audit.verify(session, checkpoints=by_chain[audit.DECISIONS])
        size, head = audit.head(session)
    if not result.ok:
        where = f"broken at row {result.first_broken_seq}" if result.first_broken_seq else "not verified"
        click.echo(f"not signed: the chain is {where}: {result.problem}")
        sys.exit(1)
    if size == 0:
        raise InputError("the chain holds no decision yet: nothing to sign")
    audit.make_durable(factory.kw["bind"])
    with factory() as session:
        decisions = audit.origin(session, audit.DECISIONS)
    checkpoint = signed(Keyring(settings().keys_directory).signer(), size, head, decisions)
    append_checkpoint(settings().checkpoints_file, checkpoint)
    audit.record_signed(factory.kw["bind"], checkpoint)
    click.echo(f"checkpoint signed by key {checkpoint.key_id}: {checkpoint.size:,} decisions ending in "
               f"{checkpoint.head[:12]}… → {settings().checkpoints_file}")
    events = sign_events(factory.kw["bind"], settings().home)
    if events is not None:
        click.echo(f"checkpoint signed by key {events.key_id}: {events.size:,} workflow events ending in "
                   f"{events.head[:12]}…")


@audit_group.command("verify-receipt")
@click.argument("receipt_file", type=click.Path(dir_okay=False, path_type=Path))
@click.option("--keys", type=click.Path(dir_okay=False, path_type=Path),
              help="The platform's published public keyring (default XYD_HOME/keys/public-keys.json).")
def verify_receipt(receipt_file: Path, keys: Path | None) -> None:
    """Verify, offline, the receipts of a saved answer (single or batch): every field the answer
    shows must be the one signed. Exit 1 saying what does not hold (a receipt alone, without the
    answer it came with, is not verified).

    Example: xyd audit verify-receipt answer.json --keys xyd-public-keys.json"""
    import json

    from api.trust.signing import SignatureProblem, read_keyring, verify_receipt as verified

    try:
        document = json.loads(receipt_file.read_text(encoding="utf-8"))
        keyring = read_keyring(_keyring_file(keys))
    except FileNotFoundError:
        raise InputError(f"{receipt_file}: no such file") from None
    except (OSError, UnicodeDecodeError, json.JSONDecodeError, RecursionError) as error:
        raise InputError(f"{receipt_file}: not JSON ({error})") from None
    except SignatureProblem as error:
        raise InputError(str(error)) from None
    answers = _answers(document)
    if not answers:
        raise InputError(f"{receipt_file}: holds no receipt (a pre-credit answer, a batch answer or a receipt)")
    failed = False
    for where, answer, receipt in answers:
        try:
            signed = verified(receipt, keyring, answer)
        except SignatureProblem as error:
            click.echo(f"{where}: NOT VERIFIED: {error}")
            failed = True
            continue
        click.echo(f"{where}: verified: row {receipt['seq']:,} signed by key {receipt['key_id']}: {signed['uscc']} "
                   f"{signed['decision']}, grade {signed['grade']}, limit {signed['limit_yuan']:,} yuan, "
                   f"decided {signed.get('decided_at') or signed.get('created_at')} (request {signed['request_id']})")
    sys.exit(1 if failed else 0)


def _answers(document) -> list[tuple[str, dict | None, dict]]:
    """Each receipt in a saved answer, batch answer or bare receipt: (where, the answer, the receipt)."""
    if not isinstance(document, dict):
        return []
    if ("record" in document or "content" in document) and "signature" in document:
        return [("receipt", None, document)]
    if isinstance(document.get("receipt"), dict):
        return [("answer", document, document["receipt"])]
    found = []
    results = document.get("results")
    for item in results if isinstance(results, list) else []:
        decision = item.get("decision") if isinstance(item, dict) else None
        if isinstance(decision, dict) and isinstance(decision.get("receipt"), dict):
            found.append((f"item {item.get('index')}", decision, decision["receipt"]))
    return found


@audit_group.group("keys", short_help="The chain's signing keys.")
def keys_group() -> None:
    """The Ed25519 keys that sign checkpoints and receipts, under XYD_HOME/keys (0600, never in
    the database or a log)."""


@keys_group.command("list")
@click.option("--json", "as_json", is_flag=True, help='One JSON object: {"current": its id, "keys": [each as '
                                                        'GET /v1/audit/keys gives it], "publish": the keyring file}.')
def list_keys(as_json: bool) -> None:
    """Every signing key's id, creation and retirement; the current one marked.

    Example: xyd audit keys list"""
    from api.trust.signing import Keyring, SignatureProblem

    keyring = Keyring(settings().keys_directory)
    try:
        current, keys = keyring.current_id(), keyring.public_keys()
    except SignatureProblem as error:
        raise InputError(str(error)) from None
    if as_json:
        print_json({"current": current, "keys": [key.as_json() for key in keys.values()],
                    "publish": str(keyring.public_file)})
        return
    if not keys:
        click.echo(f"no signing key yet under {keyring.directory}: the service makes one on first start")
        return
    for key in keys.values():
        state = "current" if key.key_id == current else f"retired {key.retired_at}"
        click.echo(f"{key.key_id}  made {key.created_at}  {state}")
    click.echo(f"publish: {keyring.public_file}")


@keys_group.command("rotate")
def rotate_keys() -> None:
    """Make a new signing key current; the old one's private half is deleted, its public half
    kept, so what it signed stays verifiable. Restart the service to sign with the new key.

    Example: xyd audit keys rotate"""
    from api.trust.signing import Keyring, SignatureProblem

    keyring = Keyring(settings().keys_directory)
    try:
        previous = keyring.current_id()
        key = keyring.generate()
    except SignatureProblem as error:
        raise InputError(str(error)) from None
    click.echo(f"signing key {key.key_id} is current" + (f"; {previous} retired, still in the keyring" if previous else "")
               + f"; publish {keyring.public_file} again and restart the service")


@click.command(short_help="Run the bank-facing service.")
@click.option("--host", default="127.0.0.1", show_default=True)
@click.option("--port", type=int, default=8000, show_default=True)
@click.option("--workers", type=click.IntRange(1, 64), default=2, show_default=True)
def serve(host: str, port: int, workers: int) -> None:
    """Run the service (uvicorn, one model per worker process).

    Example: xyd serve --workers 2"""
    import uvicorn
    from uvicorn.supervisors import Multiprocess

    from api.common.limits import raise_descriptor_limit, server_config
    from api.trust.signing import Keyring, SignatureProblem

    listener = listening_socket(host, port)  # first: a port already taken is said before anything is done
    # the model registry's store, once, before the workers start (workers that each make a missing
    # SQLite store at once break it for good), in a child: MLflow's weight stays out of the supervising
    # process, and the child's seconds pass while this one migrates the database and makes the key
    store = subprocess.Popen([sys.executable, "-c", "from models.tracking import ensure_store; ensure_store()"],
                             stdout=subprocess.DEVNULL, stderr=subprocess.PIPE, text=True)
    try:
        upgrade(settings().database)  # once, before the workers start
        try:
            signer = Keyring(settings().keys_directory).signer()  # made here on first start, not by two workers at once
        except SignatureProblem as error:
            raise InputError(f"{error}; the service signs every decision and does not start without its key") from None
    finally:
        said = store.communicate()[1]
    if store.returncode:
        said = said.strip().splitlines() or [f"exit status {store.returncode}"]
        raise InputError(f"the model registry's store cannot be opened: {said[-1]}")
    os.environ.setdefault("PROMETHEUS_MULTIPROC_DIR", tempfile.mkdtemp(prefix="xyd-metrics-"))
    # uvicorn's own access log is off: the service writes its own, structured (api.common.access_log)
    # the connections' bounds (api.common.limits): a worker's descriptors are raised here and inherited
    raise_descriptor_limit()
    config = server_config("api.main:app_from_env", host, port, workers, factory=True, log_level="warning",
                           access_log=False)
    click.echo(f"serving on http://{host}:{port} with {workers} worker(s); database {settings().database}; "
               f"chain signed by key {signer.key_id}")
    if workers == 1:
        uvicorn.Server(config).run(sockets=[listener])
        return
    Multiprocess(config, sockets=[listener]).run()


def listening_socket(host: str, port: int) -> socket.socket:
    """The service's listening socket, bound (a refusal naming the address when it cannot be).

    Made here, declared TCP: uvicorn's own leaves the protocol 0, and asyncio then never sets
    TCP_NODELAY on accepted connections, so every keep-alive request waited ~40 ms for a delayed
    ACK (uvicorn issue #3149). Inherited by the workers."""
    family = socket.AF_INET6 if ":" in host else socket.AF_INET
    listener = socket.socket(family, socket.SOCK_STREAM, socket.IPPROTO_TCP)
    listener.setsockopt(socket.SOL_SOCKET, socket.SO_REUSEADDR, 1)
    try:
        listener.bind((host, port))
    except OSError as error:
        listener.close()
        raise InputError(f"cannot listen on {host}:{port}: {error.strerror or error} (is another service "
                         "using it? choose another with --port)") from None
    listener.set_inheritable(True)
    return listener
