"""The ``xyd`` command line: one sub-command group per resource, as the service has one router each.

Each command's module is imported only when that command runs: ``xyd --help`` and ``xyd uscc
check`` must not pay for MLflow, LightGBM, SHAP, FastAPI or SQLAlchemy (2.4 s and 280 MB when
everything was imported at start-up). The list below names where each command lives and the
one line ``xyd --help`` shows for it; a test holds that line equal to the command's own
``short_help``, so the help stays true.
"""

from __future__ import annotations

import importlib

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


class InputError(click.ClickException):
    """The operator's input cannot be used; exit 2, as every refusal of the command line."""

    exit_code = 2


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


@click.group(cls=LazyGroup, context_settings={"help_option_names": ["-h", "--help"]})
def main() -> None:
    """信易贷 pre-credit platform: department records into a lake, enterprise credit profiles,
    PD models with a promotion gate and monitoring, and the service that answers banks and
    regulators. `xyd <command> --help` says more about each.

    Example: xyd demo"""
