"""The ``xyd`` command line: one sub-command group per resource, as the service has one router each.

Each command's module is imported only when that command runs: ``xyd --help`` and ``xyd uscc
check`` must not pay for MLflow, LightGBM, SHAP, FastAPI or SQLAlchemy (2.4 s and 280 MB when
everything was imported at start-up). The list below names where each command lives and the
one line ``xyd --help`` shows for it; a test holds that line equal to the command's own
``short_help``, so the help stays true.
"""

from __future__ import annotations

import importlib
import sys

import click

COMMANDS = {  # name: (module:attribute, the one line of `xyd --help`)
    "demo": ("api.cli.demo:demo", "The whole platform on a generated city, then serve it."),
    "uscc": ("api.cli.uscc:uscc", "Check and generate Unified Social Credit Codes."),
    "synth": ("api.cli.synth:synth", "Generate a synthetic Yichang, as its departments deliver."),
    "ingest": ("api.cli.ingest:ingest", "Ingest department files into the lake."),
    "quality": ("api.cli.quality:quality", "Data quality of every source: a table and a page."),
    "features": ("api.cli.features:features", "Build, show and publish enterprise credit profiles."),
    "train": ("api.cli.models:train", "Train a challenger and register it in MLflow."),
    "promote": ("api.cli.models:promote", "Promote the challenger through the gate (or --dry-run)."),
    "score": ("api.cli.models:score", "Write the pre-credit list (预授信名单) of a stored profile."),
    "monitor": ("api.cli.models:monitor", "Drift on like populations: stable, watch or retrain."),
    "clients": ("api.cli.service:clients", "API clients: banks, regulators and operators."),
    "authorizations": ("api.cli.service:authorizations", "Enterprises' authorisations (授权书) for banks."),
    "audit": ("api.cli.service:audit_group", "Audit chain, checkpoints, receipts, keys."),
    "objections": ("api.cli.objections:objections", "Objections (异议) and credit repair: file, list, settle."),
    "serve": ("api.cli.service:serve", "Run the bank-facing service."),
}


def output_console(stderr: bool = False):
    """rich's console for a command's tables and lines: on a terminal, its width; without one (a
    pipe, a file, a scheduler's log) wide enough that no table is cut at 80 columns or a code or id
    split across lines."""
    from rich.console import Console

    stream = sys.stderr if stderr else sys.stdout
    terminal = hasattr(stream, "isatty") and stream.isatty()
    return Console(stderr=stderr) if terminal else Console(stderr=stderr, width=10_000, soft_wrap=True)


def print_json(document) -> None:
    """One JSON document on standard output, for a script (Chinese as characters, dates as ISO text)."""
    import json

    click.echo(json.dumps(document, ensure_ascii=False, default=str))


def frame_records(frame) -> list[dict]:
    """A table's rows as JSON objects for :func:`print_json`: missing figures as null, NumPy
    numbers as Python's."""
    from models.explain import plain_value

    return [{k: plain_value(v) for k, v in row.items()} for row in frame.astype(object).to_dict("records")]


class InputError(click.ClickException):
    """The command is refused (its input cannot be used, or what it needs is missing): one line on
    standard error, exit 1, as every refusal. Exit 2 is kept for a command line that is not one
    (an unknown command or option, a value of the wrong kind)."""

    exit_code = 1


class LazyGroup(click.Group):
    """A group whose commands are imported when they are called, and whose help lists them from
    :data:`COMMANDS` without importing any."""

    def list_commands(self, ctx: click.Context) -> list[str]:
        return list(COMMANDS)

    def get_command(self, ctx: click.Context, name: str) -> click.Command | None:
        if name not in COMMANDS:
            return None
        module, attribute = COMMANDS[name][0].split(":")
        return getattr(importlib.import_module(module), attribute)

    def format_commands(self, ctx: click.Context, formatter: click.HelpFormatter) -> None:
        with formatter.section("Commands"):
            formatter.write_dl([(name, summary) for name, (_, summary) in COMMANDS.items()])

    def main(self, args=None, prog_name=None, complete_var=None, standalone_mode=True, **extra):
        """click's, but every error is one line on standard error, for a log or a script: a usage
        error ``xyd <command>: <what is wrong> (xyd <command> --help)``, exit 2; a refusal
        ``error: <why>``, exit 1."""
        if not standalone_mode:
            return super().main(args, prog_name, complete_var, standalone_mode, **extra)
        try:
            status = super().main(args, prog_name, complete_var, standalone_mode=False, **extra)
        except click.UsageError as error:  # before ClickException, of which it is one
            where = error.ctx.command_path if error.ctx is not None else "xyd"
            click.echo(f"{where}: {_one_line(error.format_message())} ({where} --help)", err=True)
            sys.exit(error.exit_code)
        except click.ClickException as error:
            click.echo(f"error: {_one_line(error.format_message())}", err=True)
            sys.exit(error.exit_code)
        except click.Abort:
            click.echo("aborted", err=True)
            sys.exit(1)
        sys.exit(status if isinstance(status, int) else 0)


def _one_line(message: str) -> str:
    return " ".join(message.split())


@click.group(cls=LazyGroup, context_settings={"help_option_names": ["-h", "--help"]})
def main() -> None:
    """信易贷 pre-credit platform: department records into a lake, enterprise credit profiles,
    PD models with a promotion gate and monitoring, and the service that answers banks and
    regulators. `xyd <command> --help` says more about each.

    Example: xyd demo"""
