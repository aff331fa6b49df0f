"""``xyd uscc``: check and generate Unified Social Credit Codes."""

from __future__ import annotations

import json
import sys

import click
import numpy as np

from features import uscc as codes
from features.schemas import DISTRICTS

ENTITY_TYPE_CHARS = {"enterprise": "1", "individual_business": "2", "cooperative": "3"}


@click.group()
def uscc() -> None:
    """Unified Social Credit Codes (统一社会信用代码, GB 32100-2015)."""


@uscc.command()
@click.argument("code", nargs=-1, required=True)
@click.option("--json", "as_json", is_flag=True, help="One JSON object per code, as a JSON list.")
def check(code: tuple[str, ...], as_json: bool) -> None:
    """Validate CODE... ("-" reads one code per line from standard input).

    Prints CODE<TAB>valid or CODE<TAB>invalid<TAB>reason per code; exits 0 only when every code
    is valid, 1 otherwise.
    """
    given = [line.rstrip("\r\n") for line in sys.stdin] if code == ("-",) else list(code)
    results = [codes.check(c) for c in given]
    if as_json:
        click.echo(json.dumps([r.as_dict() for r in results], ensure_ascii=False, indent=2))
    else:
        for r in results:
            click.echo(f"{r.input}\tvalid" if r.valid else f"{r.input}\tinvalid\t{r.reason}")
    sys.exit(0 if all(r.valid for r in results) else 1)


@uscc.command()
@click.argument("count", type=click.IntRange(1, 1_000_000))
@click.option("--type", "entity_type", type=click.Choice(list(ENTITY_TYPE_CHARS)), default="enterprise",
              show_default=True, help="Entity type under the market regulator (authority 9).")
@click.option("--division", type=click.Choice([d.code for d in DISTRICTS]), default="420502",
              show_default=True, help="Yichang county-level division.")
@click.option("--seed", type=int, default=None, help="Seed for repeatable codes.")
def generate(count: int, entity_type: str, division: str, seed: int | None) -> None:
    """Print COUNT random valid codes, one per line."""
    rng = np.random.default_rng(seed)
    for code in codes.random_codes(rng, count, "9", ENTITY_TYPE_CHARS[entity_type], division):
        click.echo(code)
