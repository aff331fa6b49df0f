"""``xyd uscc``: check and generate Unified Social Credit Codes."""

from __future__ import annotations

import json
import os
import sys

import click
import numpy as np

from features import uscc as codes
from features.schemas import DISTRICTS

ENTITY_TYPE_CHARS = {"enterprise": "1", "individual_business": "2", "cooperative": "3"}
BULK = 1_000
"""From this many codes on, validity is decided for all at once (Arrow) and only the invalid
codes are explained one by one."""


@click.group(short_help="Check and generate Unified Social Credit Codes.")
def uscc() -> None:
    """Unified Social Credit Codes (统一社会信用代码, GB 32100-2015): check them, or generate valid
    ones for tests.

    Example: xyd uscc check 91420502MA4ABCDE1X"""


@uscc.command()
@click.argument("code", nargs=-1, required=True)
@click.option("--json", "as_json", is_flag=True, help="One JSON object per code, as a JSON list.")
def check(code: tuple[str, ...], as_json: bool) -> None:
    """Validate CODE... ("-" reads one code per line from standard input).

    Prints CODE<TAB>valid or CODE<TAB>invalid<TAB>reason per code; exits 0 only when every code
    is valid, 1 otherwise.

    Example: xyd uscc generate 1000 | xyd uscc check -
    """
    given = [line.rstrip("\r\n") for line in sys.stdin] if code == ("-",) else list(code)
    if as_json:
        results = [codes.check(c) for c in given]
        click.echo(json.dumps([r.as_dict() for r in results], ensure_ascii=False, indent=2))
        sys.exit(0 if all(r.valid for r in results) else 1)
    valid = codes.valid_mask(given) if len(given) >= BULK else [codes.check(c).valid for c in given]
    lines = [f"{text}\tvalid" if ok else f"{text}\tinvalid\t{codes.check(text).reason}"
             for text, ok in zip(given, valid)]
    _write(lines)
    sys.exit(0 if all(valid) else 1)


@uscc.command()
@click.argument("count", type=click.IntRange(1, 1_000_000))
@click.option("--type", "entity_type", type=click.Choice(list(ENTITY_TYPE_CHARS)), default="enterprise",
              show_default=True, help="Entity type under the market regulator (authority 9).")
@click.option("--division", type=click.Choice([d.code for d in DISTRICTS]), default="420502",
              show_default=True, help="Yichang county-level division.")
@click.option("--seed", type=int, default=None, help="Seed for repeatable codes.")
def generate(count: int, entity_type: str, division: str, seed: int | None) -> None:
    """Print COUNT random valid codes, one per line.

    Example: xyd uscc generate 5 --type individual_business --seed 1"""
    rng = np.random.default_rng(seed)
    _write(list(codes.random_codes(rng, count, "9", ENTITY_TYPE_CHARS[entity_type], division)))


def _write(lines: list[str]) -> None:
    """Lines to standard output at once; a reader that stops early (`| head`) ends the command
    quietly instead of with a traceback."""
    if not lines:
        return
    try:
        sys.stdout.write("\n".join(lines) + "\n")
        sys.stdout.flush()
    except BrokenPipeError:
        os.dup2(os.open(os.devnull, os.O_WRONLY), sys.stdout.fileno())  # nothing more to flush at exit
        sys.exit(1)
