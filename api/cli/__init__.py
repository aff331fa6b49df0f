"""The ``xyd`` command line: one sub-command group per resource, as the service has one router each."""

from __future__ import annotations

import click

from api.cli.demo import demo
from api.cli.features import features
from api.cli.ingest import ingest
from api.cli.models import monitor, promote, score, train
from api.cli.service import audit_group, authorizations, clients, serve
from api.cli.quality import quality
from api.cli.synth import synth
from api.cli.uscc import uscc


@click.group(context_settings={"help_option_names": ["-h", "--help"]})
def main() -> None:
    """信易贷 pre-credit platform: codes, synthetic city, and (as they land) ingestion,
    profiles, models and the bank-facing service."""


main.add_command(uscc)
main.add_command(synth)
main.add_command(demo)
main.add_command(ingest)
main.add_command(quality)
main.add_command(features)
main.add_command(train)
main.add_command(promote)
main.add_command(score)
main.add_command(monitor)
main.add_command(clients)
main.add_command(authorizations)
main.add_command(audit_group)
main.add_command(serve)
