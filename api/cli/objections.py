"""``xyd objections``: file, list, show and settle objections (异议) and credit repair notices."""

from __future__ import annotations

import json
from pathlib import Path

import click
from rich.table import Table

from api.cli import InputError, output_console
from api.cli.service import database
from api.settings import settings

DATE = click.DateTime(formats=["%Y-%m-%d"])


class _Operator:
    """The platform operator at the command line (the settlement and filing are recorded as by client
    ``--as``, an operator client; the command line is the operator's own tool)."""

    role = "operator"

    def __init__(self, client_id: int):
        self.id = client_id


def _operator(factory, client_id: int | None) -> _Operator:
    from api.access import clients

    with factory() as session:
        operators = [c for c in clients.list_clients(session) if c.role == "operator" and not c.disabled]
    if client_id is None:
        if len(operators) != 1:
            raise InputError("name the operator client acting (--as ID): "
                             + ("there is none; add one with `xyd clients add --role operator --name …`" if not operators
                                else f"there are {len(operators)}: {', '.join(str(c.id) for c in operators)}"))
        return _Operator(operators[0].id)
    if client_id not in {c.id for c in operators}:
        raise InputError(f"client {client_id} is not an enabled operator")
    return _Operator(client_id)


def _run(call):
    from api.common.refusals import Refusal

    try:
        return call()
    except Refusal as error:
        raise InputError(f"{error.code}: {error.message}") from None


def _key_values(pairs: tuple[str, ...], what: str) -> dict[str, str]:
    out = {}
    for pair in pairs:
        if "=" not in pair:
            raise InputError(f"{what} {pair!r}: write column=value")
        column, value = pair.split("=", 1)
        out[column.strip()] = value.strip()
    return out


@click.group(short_help="Objections (异议) and credit repair: file, list, settle.")
def objections() -> None:
    """Objections (异议) to records and features, and credit repair notices: filed for an
    enterprise, settled by the owning department within 5 working days (work plan item 5)."""


@objections.command("file")
@click.option("--uscc", required=True, help="The enterprise's Unified Social Credit Code.")
@click.option("--source", help="The disputed record's source (e.g. administrative_penalties).")
@click.option("--key", "keys", multiple=True, help="The record's natural key, column=value (repeat for each column).")
@click.option("--feature", help="Or: the disputed profile feature.")
@click.option("--grounds", required=True, help="Why the record is wrong (or, for a repair, what was corrected).")
@click.option("--attachment", "attachments", multiple=True, type=click.Path(exists=True, dir_okay=False, path_type=Path),
              help="A supporting document; its SHA-256 is kept (repeat for each).")
@click.option("--repair", is_flag=True, help="A credit repair notice (信用修复) instead of an objection.")
@click.option("--as", "client_id", type=int, help="The operator client filing (default: the only one).")
@click.option("--quiet", "-q", is_flag=True, help="Print the objection's id alone (for a script: ID=$(…)).")
def file_objection(uscc, source, keys, feature, grounds, attachments, repair, client_id, quiet) -> None:
    """File an objection on an enterprise's behalf; the next decision says the record is disputed.

    Example: xyd objections file --uscc 91420502MA4ABCDE3G --source administrative_penalties --key decision_no=宜环罚〔2025〕12号 --grounds '处罚决定已被撤销' --attachment 撤销决定书.pdf"""
    import hashlib

    from api.objections import workflow

    factory = database()
    caller = _operator(factory, client_id)
    filing = workflow.Filing(uscc=uscc, grounds=grounds, kind="repair" if repair else "objection", source=source,
                             record=_key_values(keys, "--key") if keys else None, feature=feature,
                             attachments=tuple(hashlib.sha256(p.read_bytes()).hexdigest() for p in attachments))
    objection = _run(lambda: workflow.file(factory, settings().home, caller, filing))
    if quiet:
        click.echo(objection.id)
        return
    click.echo(f"objection {objection.id} filed for {objection.uscc} ({objection.department}); due "
               f"{objection.due_day} (5 working days"
               + ("; provisional: counted on weekdays alone until the year's holiday notice is known)"
                  if objection.due_provisional else ")"))


@objections.command("list")
@click.option("--overdue", is_flag=True, help="Only open objections past their due day.")
@click.option("--due-by", type=DATE, help="Only those due on or before this day.")
@click.option("--status", type=click.Choice(["open", "upheld", "corrected", "removed", "repaired"]))
@click.option("--department", help="Only this department's.")
@click.option("--uscc", help="Only this enterprise's.")
@click.option("--json", "as_json", is_flag=True, help="JSON lines instead of a table.")
def list_objections(overdue, due_by, status, department, uscc, as_json) -> None:
    """Objections by due day, soonest first (open and late ones with --overdue).

    Example: xyd objections list --overdue"""
    from api.objections import queries, workflow
    from api.precredit.decide import normalised_code, today_in_china

    today = today_in_china()
    before = workflow.due_before(today if overdue else None, due_by.date() if due_by else None)
    code = _run(lambda: normalised_code(uscc)) if uscc else None
    for objection_id, provisional, confirmed in workflow.confirm_dues(database(), settings().home):
        click.echo(f"objection {objection_id}: provisional due day {provisional} is now {confirmed} "
                   "(the year's holiday notice is known)", err=True)
    with database()() as session:
        count, rows = queries.list_objections(session, "open" if overdue else status, department, before, code,
                                              limit=10**6)
    items = [workflow.shown(o, today, settings().home) for o in rows]
    if as_json:
        for item in items:
            click.echo(item.model_dump_json())
        return
    table = Table(title=f"{count:,} objection(s){' overdue on ' + str(today) if overdue else ''}")
    for header in ("id", "enterprise", "department", "record", "filed", "due", "status", "late"):
        table.add_column(header, overflow="fold")
    for item in items:
        record = f"{item.source} {' / '.join(item.record.values())}" if item.record else f"feature {item.feature}"
        due = f"{item.due_day} provisional" if item.due_provisional else str(item.due_day)
        table.add_row(item.id, item.uscc, item.department, record, str(item.filed_day), due,
                      item.status, "late" if item.overdue else "")
    output_console().print(table)


@objections.command("show")
@click.argument("objection_id")
def show(objection_id: str) -> None:
    """One objection, whole, as JSON.

    Example: xyd objections show 5b0e8c1e-2f4d-4b8e-9a57-0c2d6f1e9a44"""
    from api.objections import queries, workflow

    with database()() as session:
        objection = queries.get(session, objection_id)
    if objection is None:
        raise InputError(f"no objection {objection_id}")
    shown = workflow.shown(objection, home=settings().home)
    click.echo(json.dumps(shown.model_dump(mode="json"), ensure_ascii=False, indent=1))


@objections.command("republish")
def republish() -> None:
    """Republish every settled correction, removal or repair whose profile was not republished (its
    rebuild failed, or the service stopped in between); exit 1 naming any that fail again.

    Example: xyd objections republish"""
    import sys

    from api.objections import workflow

    results = workflow.republish_pending(database(), settings().home)
    failed = False
    for objection_id, outcome in results:
        if isinstance(outcome, str):
            failed = True
            click.echo(f"objection {objection_id}: NOT republished: {outcome}")
        else:
            click.echo(f"objection {objection_id}: republished {', '.join(outcome) or 'nothing (no stored profile)'}")
    click.echo(f"{len(results)} settlement(s) waited to be republished")
    if failed:
        sys.exit(1)


@objections.command("settle")
@click.argument("objection_id")
@click.option("--outcome", type=click.Choice(["upheld", "corrected", "removed", "repaired"]), required=True)
@click.option("--note", required=True, help="The department's finding.")
@click.option("--set", "changes", multiple=True, help="corrected: column=corrected value (repeat for each).")
@click.option("--repaired-on", type=DATE, help="repaired: the repair date.")
@click.option("--as", "client_id", type=int, help="The operator client acting for the department (default: the only one).")
def settle(objection_id, outcome, note, changes, repaired_on, client_id) -> None:
    """Settle an objection for its department; a correction, removal or repair rebuilds and
    republishes the enterprise's profile.

    Example: xyd objections settle 5b0e8c1e-2f4d-4b8e-9a57-0c2d6f1e9a44 --outcome removed --note '处罚决定已撤销'"""
    from api.objections import workflow

    factory = database()
    caller = _operator(factory, client_id)
    settlement = workflow.Settlement(outcome, note, _key_values(changes, "--set") if changes else None,
                                     repaired_on.date() if repaired_on else None)
    settled = _run(lambda: workflow.settle(factory, settings().home, caller, objection_id, settlement))
    republished = f"; profile republished {settled.republished_at}" if settled.republished_at else ""
    click.echo(f"objection {settled.id} settled: {settled.status}{republished}")
