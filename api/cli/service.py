"""``xyd clients``, ``xyd authorizations``, ``xyd audit``, ``xyd serve``: running the service."""

from __future__ import annotations

import datetime as dt
import hashlib
import os
import socket
import sys
import tempfile
from pathlib import Path

import click
from rich.console import Console
from rich.table import Table

from api.db import audit, repository
from api.db.engine import make_engine, sessions, upgrade, writing
from api.settings import settings

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
@click.option("--role", type=click.Choice(repository.ROLES), required=True)
@click.option("--name", required=True, help="The bank's or department's name.")
def add_client(role: str, name: str) -> None:
    """Create a client and print its API key, once: only its hash is kept.

    Example: xyd clients add --role bank --name '宜昌银行'"""
    with writing(database()) as session:
        try:
            client, key = repository.add_client(session, name, role)
        except ValueError as error:
            raise click.UsageError(str(error)) from None
    click.echo(f"client {client.id} ({role}, {client.name})\nAPI key (shown once, keep it safe): {key}")


@clients.command("list")
def list_clients() -> None:
    """Every client: id, role, name, key prefix, disabled.

    Example: xyd clients list"""
    table = Table(title="API clients")
    for header in ("id", "role", "name", "key", "disabled", "created"):
        table.add_column(header, overflow="fold")
    with database()() as session:
        for c in repository.list_clients(session):
            table.add_row(str(c.id), c.role, c.name, c.key_prefix + "…", "yes" if c.disabled else "", c.created_at)
    Console().print(table)


@clients.command("disable")
@click.argument("client_id", type=int)
@click.option("--enable", is_flag=True, help="Enable it again instead.")
def disable_client(client_id: int, enable: bool) -> None:
    """Disable (or enable) a client: its key stops working within seconds.

    Example: xyd clients disable 3"""
    with writing(database()) as session:
        if repository.set_disabled(session, client_id, not enable) is None:
            raise click.UsageError(f"no client {client_id}")
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
def add_authorization(uscc: str, bank_id: int, purpose: str, data_scope: str, valid_from, valid_until,
                      template_version: str, document: Path | None) -> None:
    """Register an enterprise's authorisation for one bank.

    Example: xyd authorizations add --uscc 91420502EFPX14RX05 --bank-id 1 --document letter.pdf"""
    from api.decide import normalised_code, today_in_china
    from api.errors import ApiError

    start = valid_from.date() if valid_from else today_in_china()
    until = valid_until.date() if valid_until else start + dt.timedelta(days=364)
    digest = hashlib.sha256(document.read_bytes() if document else f"{uscc}|{bank_id}|{start}".encode()).hexdigest()
    try:
        code = normalised_code(uscc)
        with writing(database()) as session:
            record = repository.add_authorization(session, code, bank_id, purpose, data_scope, start, until,
                                                  template_version, digest)
    except (ValueError, ApiError) as error:
        raise click.UsageError(str(error)) from None
    click.echo(f"authorisation {record.id}: {record.uscc} → bank {bank_id}, valid {start} to {until}")


@authorizations.command("revoke")
@click.argument("authorization_id")
def revoke_authorization(authorization_id: str) -> None:
    """Revoke an authorisation from now on.

    Example: xyd authorizations revoke 5301ff58-e893-4ee5-9358-4eb900c6c360"""
    with writing(database()) as session:
        if repository.revoke_authorization(session, authorization_id) is None:
            raise click.UsageError(f"no authorisation {authorization_id}")
    click.echo(f"authorisation {authorization_id} revoked")


@authorizations.command("list")
@click.option("--uscc")
@click.option("--bank-id", type=int)
def list_authorizations(uscc: str | None, bank_id: int | None) -> None:
    """Authorisations, newest last.

    Example: xyd authorizations list --bank-id 1"""
    table = Table(title="authorisations")
    for header in ("id", "uscc", "bank", "valid", "revoked", "purpose"):
        table.add_column(header, overflow="fold")
    with database()() as session:
        count, rows = repository.list_authorizations(session, uscc, bank_id, limit=500)
        for a in rows:
            table.add_row(a.id, a.uscc, str(a.bank_id), f"{a.valid_from} … {a.valid_until}", a.revoked_at or "", a.purpose)
    table.caption = f"{count:,} in all"
    Console().print(table)


@click.group("audit", short_help="Verify the decisions' audit chain.")
def audit_group() -> None:
    """The decisions' audit chain."""


@audit_group.command("verify")
def verify() -> None:
    """Recompute the hash chain of every decision; exit 1 naming the first broken row.

    Example: xyd audit verify"""
    with database()() as session:
        result = audit.verify(session)
    if result.ok:
        click.echo(f"audit chain intact: {result.rows:,} decisions")
        return
    click.echo(f"audit chain BROKEN at row {result.first_broken_seq} (request {result.first_broken_request}): "
               f"{result.problem}; {result.rows:,} rows before it are intact")
    sys.exit(1)


@click.command(short_help="Run the bank-facing service.")
@click.option("--host", default="127.0.0.1", show_default=True)
@click.option("--port", type=int, default=8000, show_default=True)
@click.option("--workers", type=click.IntRange(1, 64), default=2, show_default=True)
def serve(host: str, port: int, workers: int) -> None:
    """Run the service (uvicorn, one model per worker process).

    Example: xyd serve --workers 2"""
    import uvicorn

    from uvicorn.supervisors import Multiprocess

    upgrade(settings().database)  # once, before the workers start
    os.environ.setdefault("PROMETHEUS_MULTIPROC_DIR", tempfile.mkdtemp(prefix="xyd-metrics-"))
    config = uvicorn.Config("api.main:app_from_env", factory=True, host=host, port=port, workers=workers,
                            log_level="warning", access_log=False)
    click.echo(f"serving on http://{host}:{port} with {workers} worker(s); database {settings().database}")
    if workers == 1:
        uvicorn.Server(config).run()
        return
    # The listening socket is made here, declared TCP: uvicorn's own leaves the protocol 0, and
    # asyncio then never sets TCP_NODELAY on accepted connections, so every keep-alive request
    # waited ~40 ms for a delayed ACK (uvicorn issue #3149).
    family = socket.AF_INET6 if ":" in host else socket.AF_INET
    listener = socket.socket(family, socket.SOCK_STREAM, socket.IPPROTO_TCP)
    listener.setsockopt(socket.SOL_SOCKET, socket.SO_REUSEADDR, 1)
    try:
        listener.bind((host, port))
    except OSError as error:
        raise click.UsageError(f"cannot listen on {host}:{port}: {error}") from None
    listener.set_inheritable(True)
    Multiprocess(config, sockets=[listener]).run()
