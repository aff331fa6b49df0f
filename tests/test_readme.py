"""The README runs as written: every command it shows, in its order, on the demo city (#29).

The README is read as a reader would follow it, in a fresh folder that holds the clone's files (its
packages, notebooks and policy file, linked) and the environment the set-up made (``.venv``, the
one running this test), with no ``XYD_*`` or MLflow variable set: state goes to ``./var`` and
``./mlruns`` as the README says. One bash runs every block, so that ``source`` and ``X=$(…)`` carry
on to the next command as in a reader's shell. A command must end as its comment says: status 0,
or 1 where it says "(exits 1)". A command ending in ``&`` is a server: the URL its comment names
must answer before the next command runs, and every server is stopped when its block ends. The
set-up command runs ``xyd demo`` as a server the same way.

Two kinds of line are not run here, by rule, and the test holds them to it: the set-up's
``python3 -m venv .venv && .venv/bin/pip install -e '.[test]'`` (``.ci/run`` runs exactly that on a
clean clone before this suite; the run-command must begin with the same words as the test command)
and ``pip install -e '.[EXTRA]'`` lines, whose every pinned requirement must already be installed
here (so the commands after them run on what they install).
"""

from __future__ import annotations

import os
import re
import shlex
import socket
import subprocess
import sys
import tomllib
from dataclasses import dataclass
from importlib import metadata
from pathlib import Path

import pytest

pytestmark = pytest.mark.long(minutes=5)  # measured on 2 cores: its file goes to a worker first (tests/conftest.py)

ROOT = Path(__file__).resolve().parent.parent
README = ROOT / "README.md"
SETUP = "python3 -m venv .venv && .venv/bin/pip install -e '.[test]' && "
SERVER_URL = re.compile(r"#.*?(http://127\.0\.0\.1:(\d+)[^\s;:,]*)")
INSTALL = re.compile(r"^(?:\.venv/bin/)?pip install -e '\.\[([a-z,]+)\]'(\s|$)")
LEFT_OUT_OF_THE_VIEW = {".git", ".venv", "var", "mlruns", "cities", ".pytest_cache", ".hypothesis"}


@dataclass(frozen=True)
class Command:
    line: int
    text: str

    @property
    def comment(self) -> str:
        """The text after the command's ``#`` comment mark (outside quotes), or ''."""
        at = _comment_start(self.text)
        return self.text[at + 1:].strip() if at is not None else ""

    @property
    def code(self) -> str:
        at = _comment_start(self.text)
        return (self.text[:at] if at is not None else self.text).rstrip()

    @property
    def expected_status(self) -> int:
        return 1 if "(exits 1)" in self.comment else 0

    @property
    def server(self) -> str | None:
        """The URL a server command must answer at, or None for a command that ends."""
        if not self.code.endswith("&"):
            return None
        found = SERVER_URL.search(self.text)
        assert found, f"README line {self.line}: a server (ending in &) must name the URL it answers at"
        return found.group(1)


def _comment_start(text: str) -> int | None:
    """Where a shell comment starts: a ``#`` after whitespace, outside quotes."""
    quote, escaped = None, False
    for i, ch in enumerate(text):
        if escaped:  # the character after a backslash (outside single quotes) is literal
            escaped = False
        elif ch == "\\" and quote != "'":
            escaped = True
        elif quote:
            if ch == quote:
                quote = None
        elif ch in "'\"":
            quote = ch
        elif ch == "#" and (i == 0 or text[i - 1].isspace()):
            return i
    return None


def readme_blocks(text: str) -> list[tuple[str, list[Command]]]:
    """Every ```sh block of the README: (the marker comment before it, or '', its commands)."""
    blocks, lines, i = [], text.splitlines(), 0
    while i < len(lines):
        if lines[i].strip() == "```sh":
            marker = lines[i - 1].strip() if i and lines[i - 1].startswith("<!--") else ""
            commands, i = [], i + 1
            while lines[i].strip() != "```":
                if lines[i].strip() and not lines[i].lstrip().startswith("#"):
                    commands.append(Command(i + 1, lines[i]))
                i += 1
            blocks.append((marker, commands))
        i += 1
    return blocks


def installed_extra(extra: str) -> list[str]:
    """The pinned requirements of an extra that are not installed at their pinned version."""
    wanted = tomllib.loads((ROOT / "pyproject.toml").read_text("utf-8"))["project"]["optional-dependencies"][extra]
    missing = []
    for requirement in wanted:
        name, _, version = requirement.partition("==")
        try:
            if version and metadata.version(name.strip()) != version.strip():
                missing.append(requirement)
        except metadata.PackageNotFoundError:
            missing.append(requirement)
    return missing


PROLOGUE = """set -m  # each server in its own process group, stopped whole
servers=()
stop_servers() {  # TERM, a minute to finish (the service signs its last checkpoint), then KILL
    for pid in "${servers[@]}"; do kill -TERM -- -$pid 2>/dev/null; done
    for pid in "${servers[@]}"; do
        for _ in $(seq 600); do kill -0 $pid 2>/dev/null || break; sleep 0.1; done
        kill -KILL -- -$pid 2>/dev/null
    done
    servers=()
}
failed() { echo "README line $1: $2" >&2; tail -n 20 "$3" >&2; stop_servers; exit 1; }"""


def script(blocks: list[tuple[str, list[Command]]], folder: Path, logs: Path) -> str:
    """One bash script: every command in order, its status checked, servers waited for and stopped."""
    wait = f"{shlex.quote(sys.executable)} {shlex.quote(str(Path(__file__).with_name('readme_wait.py')))}"
    out = [PROLOGUE, f"cd {shlex.quote(str(folder))}"]
    for marker, commands in blocks:
        for command in commands:
            text, log = command.text, logs / str(command.line)
            if marker == "<!-- test-command -->":
                continue  # .ci/run runs it; the suite is what it runs
            if marker == "<!-- run-command -->":
                text = command.text.removeprefix(SETUP) + " &  # http://127.0.0.1:8000/readyz"
            elif INSTALL.match(command.code):
                continue  # held to what is installed by test_every_install_line_is_already_installed
            run = Command(command.line, text)
            out.append(f"{{ {text}\n}} > {log}.out 2> {log}.err")
            if run.server:
                out.append("servers+=($!)")
                out.append(f"{wait} {shlex.quote(run.server)} $! || "
                           f"failed {command.line} {shlex.quote(f'`{command.code}` did not answer at {run.server}')} "
                           f"{log}.err")
            else:
                said = shlex.quote(f"`{command.code}` ended with status %s; the README says {run.expected_status}")
                out.append(f"status=$?; [ $status -eq {run.expected_status} ] || "
                           f"failed {command.line} \"$(printf {said} $status)\" {log}.err")
        out.append("stop_servers")
    out.append("echo every command ran as the README says")
    return "\n".join(out) + "\n"


def view_of_the_clone(folder: Path) -> None:
    """A folder a reader of a fresh clone would stand in: the clone's files, linked, the environment
    running this test as ``.venv``, and no state."""
    folder.mkdir()
    for entry in ROOT.iterdir():
        if entry.name not in LEFT_OUT_OF_THE_VIEW and not entry.name.endswith(".egg-info"):
            (folder / entry.name).symlink_to(entry)
    (folder / ".venv").symlink_to(Path(sys.prefix))


def test_the_set_up_and_test_commands_begin_alike_and_every_install_line_is_already_installed():
    blocks = readme_blocks(README.read_text("utf-8"))
    marked = {marker: commands for marker, commands in blocks if marker}
    (run,), (test,) = marked["<!-- run-command -->"], marked["<!-- test-command -->"]
    assert run.text.startswith(SETUP) and test.text.startswith(SETUP), "the set-ups differ: .ci/run runs only one"
    installs = [c for _, commands in blocks for c in commands if INSTALL.match(c.code)]
    assert installs, "the README installs no extra: this test reads nothing"
    for command in installs:
        for extra in INSTALL.match(command.code).group(1).split(","):
            assert not installed_extra(extra), f"README line {command.line}: pip install '.[{extra}]' would install " \
                f"{installed_extra(extra)}, which the test environment lacks: the commands after it are not run on it"


def _taken(port: int) -> bool:
    with socket.socket() as probe:
        return probe.connect_ex(("127.0.0.1", port)) == 0


def test_every_command_of_the_readme_runs_as_written_on_the_demo_city(tmp_path):
    assert Path(sys.prefix) != Path(sys.base_prefix), "run the suite from the environment the README's set-up makes"
    blocks = readme_blocks(README.read_text("utf-8"))
    ports = sorted({int(m.group(2)) for _, cs in blocks for c in cs for m in [SERVER_URL.search(c.text)] if m}
                   | {8000})
    taken = [port for port in ports if _taken(port)]
    assert not taken, f"the README's servers listen on {ports}; {taken} already taken on this machine"
    folder, logs = tmp_path / "clone", tmp_path / "logs"
    view_of_the_clone(folder)
    logs.mkdir()
    env = {k: v for k, v in os.environ.items()
           if not k.startswith(("XYD_", "MLFLOW_", "VIRTUAL_ENV", "PYTHONPATH"))}
    env["PATH"] = os.pathsep.join(p for p in env.get("PATH", "").split(os.pathsep)
                                  if not p.startswith(str(Path(sys.prefix))))
    (tmp_path / "readme.sh").write_text(script(blocks, folder, logs), "utf-8")
    done = subprocess.run(["bash", str(tmp_path / "readme.sh")], env=env, capture_output=True, text=True,
                          timeout=1800)
    assert done.returncode == 0, done.stderr[-4000:]
    # what the commands left is what the README says they leave
    home = folder / "var"
    assert (home / "demo.env").stat().st_mode & 0o077 == 0, "demo.env holds keys: its owner's alone"
    assert (folder / "answer.json").stat().st_size > 0 and (folder / "out.ipynb").exists()
    assert (folder / "checkpoints-2026-12.jsonl").stat().st_size > 0
    receipt_check = (logs / str(_line_of(blocks, "xyd audit verify-receipt"))).with_suffix(".out").read_text("utf-8")
    assert receipt_check.startswith("answer: verified: row") and "NOT VERIFIED" not in receipt_check


def _line_of(blocks, start: str) -> int:
    return next(c.line for _, cs in blocks for c in cs if c.code.startswith(start))


def test_the_demos_examples_file_is_its_owners_alone_and_says_which_example_a_small_city_cannot_give(tmp_path):
    """The README sources var/demo.env; a city too small to hold a penalty or a listing leaves those
    variables unset, saying so in the file, instead of failing the demo at its last step."""
    import datetime as dt

    from api.cli.demo import write_examples

    path = write_examples(tmp_path, dt.date(2026, 10, 31), "91420502MA4ABCDE3G", "an-id", "bank-key", "reg key")
    assert path.stat().st_mode & 0o777 == 0o600
    text = path.read_text("utf-8")
    assert "export AS_OF=2026-10-31\n" in text and "export REGULATOR_KEY='reg key'\n" in text  # quoted for the shell
    assert "# no administrative_penalties record known by 2026-10-31 in this city: PENALISED_USCC and PENALTY_NO " \
           "are unset" in text and "CASE_NO=" not in text
    again = write_examples(tmp_path, dt.date(2026, 10, 31), "91420502MA4ABCDE3G", "another", "k", "r")
    assert "export AUTHORIZATION_ID=another\n" in again.read_text("utf-8")  # a later demo's values replace it
