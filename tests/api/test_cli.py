"""The ``xyd`` command line as an operator uses it: output format and exit codes."""

from __future__ import annotations

import datetime as dt
import json
import os
import subprocess
import sys
import time
from pathlib import Path

import click
import pytest
from click.testing import CliRunner

from api.cli import main
from api.cli.demo import newest_delivered_month
from features import uscc
from features.synth.city import CitySpec, city_last_day
from models.policy import Policy

pytestmark = pytest.mark.long(minutes=1.5)  # measured on 2 cores: its file goes to a worker first (tests/conftest.py)

VALID = "91350100M000100Y43"


def run(*args: str, input: str | None = None):
    return CliRunner().invoke(main, list(args), input=input)


def test_check_prints_one_tab_separated_line_per_code_and_exit_zero_when_all_valid():
    result = run("uscc", "check", VALID, " ９１３５０１００Ｍ０００１００Ｙ４３")
    assert result.exit_code == 0
    assert result.output.splitlines() == [f"{VALID}\tvalid", " ９１３５０１００Ｍ０００１００Ｙ４３\tvalid"]


def test_check_names_the_reason_and_exits_one_when_any_code_is_invalid():
    result = run("uscc", "check", VALID, "91350100M000100Y44", "abc")
    assert result.exit_code == 1
    lines = [line.split("\t") for line in result.output.splitlines()]
    assert lines[0] == [VALID, "valid"]
    assert lines[1][:2] == ["91350100M000100Y44", "invalid"] and "position 18" in lines[1][2]
    assert lines[2][:2] == ["abc", "invalid"] and "18" in lines[2][2]


def test_check_json_for_machines():
    result = run("uscc", "check", "--json", VALID, "Y1350100M000100Y43")
    assert result.exit_code == 1
    payload = json.loads(result.output)
    assert payload[0]["valid"] is True and payload[0]["division"] == "350100"
    assert payload[1] == {"input": "Y1350100M000100Y43", "normalised": "Y1350100M000100Y43", "valid": False,
                          "rule": "check_character", "reason": payload[1]["reason"]}


def test_check_reads_codes_from_standard_input():
    result = run("uscc", "check", "-", input=f"{VALID}\r\n91350100M000100Y44\n")
    assert result.exit_code == 1
    assert [line.split("\t")[1] for line in result.output.splitlines()] == ["valid", "invalid"]


def test_many_codes_from_standard_input_get_the_verdicts_of_one_code_at_a_time():
    import numpy as np

    generated = uscc.random_codes(np.random.default_rng(5), 1_500, "9", "1", "420502")
    typed = [str(c) for c in generated]
    typed[::7] = [c[:-1] + ("0" if c[-1] != "0" else "1") for c in typed[::7]]  # a wrong check character
    typed[3::11] = [" " + c.lower() for c in typed[3::11]]  # lower case with a space: valid once normalised
    typed[5::13] = ["９" + c[1:] for c in typed[5::13]]  # full width: valid once normalised
    typed[1::17] = ["", "abc", "9142050", "Ｉ" * 18] * (len(typed[1::17]) // 4) + [""] * (len(typed[1::17]) % 4)
    result = run("uscc", "check", "-", input="\n".join(typed) + "\n")
    assert result.exit_code == 1
    expected = [f"{c}\tvalid" if uscc.check(c).valid else f"{c}\tinvalid\t{uscc.check(c).reason}" for c in typed]
    assert result.output.splitlines() == expected


def test_light_commands_import_no_heavy_library():
    """`xyd --help` and `xyd uscc check` start in a fraction of a second: a clerk checks codes in a
    shell loop. Each runs in a fresh interpreter that then lists the heavy modules it loaded."""
    heavy = ("mlflow", "lightgbm", "shap", "fastapi", "sqlalchemy", "pandas", "sklearn", "matplotlib")
    for args in (["--help"], ["uscc", "check", VALID], ["uscc", "--help"]):
        probe = ("import sys\nfrom api.cli import main\ntry:\n    main(%r)\nexcept SystemExit:\n    pass\n"
                 "print('LOADED', sorted(m for m in %r if m in sys.modules))" % (args, heavy))
        done = subprocess.run([sys.executable, "-c", probe], capture_output=True, text=True, timeout=60)
        assert done.stdout.splitlines()[-1] == "LOADED []", (args, done.stdout[-300:], done.stderr[-300:])


def test_the_help_lists_each_command_in_its_own_words():
    from api.cli import COMMANDS

    ctx = click.Context(main)
    for name, (_, summary) in COMMANDS.items():
        assert main.get_command(ctx, name).short_help == summary, name
    listed = run("--help").output
    assert all(name in listed and summary in listed for name, (_, summary) in COMMANDS.items())
    assert "as they land" not in listed


def test_check_without_codes_is_a_usage_error():
    result = run("uscc", "check")
    assert result.exit_code == 2 and "Missing argument" in result.output


def test_generate_prints_valid_codes_of_the_asked_type():
    result = run("uscc", "generate", "5", "--type", "individual_business", "--division", "420527", "--seed", "3")
    codes = result.output.split()
    assert result.exit_code == 0 and len(codes) == 5
    assert all(uscc.check(c).valid and c.startswith("92420527") for c in codes)
    assert run("uscc", "generate", "5", "--type", "individual_business", "--division", "420527",
               "--seed", "3").output.split() == codes


def test_synth_writes_a_city_and_prints_rows_per_second(tmp_path):
    out = tmp_path / "city"
    result = run("synth", "--enterprises", "200", "--months", "3", "--seed", "4", "--dirty", "0.02", "--out", str(out))
    assert result.exit_code == 0, result.output
    assert "rows/s" in result.output and "tax_filings" in result.output
    assert (out / "city.json").exists() and (out / "ground_truth" / "dirty_manifest.csv").exists()


def test_synth_refuses_a_non_empty_folder_and_bad_parameters_with_exit_one(tmp_path):
    out = tmp_path / "city"
    out.mkdir()
    (out / "mine.txt").write_text("keep")
    result = run("synth", "--enterprises", "10", "--out", str(out))
    assert result.exit_code == 1 and "--force" in result.output
    assert (out / "mine.txt").exists()
    result = run("synth", "--enterprises", "10", "--months", "0", "--out", str(tmp_path / "other"))
    assert result.exit_code == 1 and "months must be between 1 and 120; got 0" in result.output
    assert not (tmp_path / "other").exists()


def test_demo_builds_the_city_under_xyd_home(tmp_path):
    # a real process: the console script as the README runs it, with its own XYD_HOME
    env = {"XYD_HOME": str(tmp_path / "home"), "PATH": "", "COLUMNS": "80",
           "MLFLOW_TRACKING_URI": f"sqlite:///{tmp_path}/mlflow/mlflow.db"}
    done = subprocess.run([sys.executable, "-m", "api.cli", "demo", "--enterprises", "3000", "--no-serve"],
                          capture_output=True, text=True, env=env, timeout=300)
    assert done.returncode == 0, done.stderr
    assert (tmp_path / "home" / "demo-city" / "enterprise_registry" / "enterprise_registry.csv").exists()
    assert (tmp_path / "home" / "lake" / "_manifest.json").exists()
    assert (tmp_path / "home" / "reports" / "quality-demo.html").exists()
    # the demo city ends at the newest month delivered today: its profile is within the policy's freshness limit
    as_of = city_last_day(CitySpec(end=newest_delivered_month(dt.date.today())))
    assert 0 < (dt.date.today() - as_of).days <= Policy.load().max_profile_age_days
    assert (tmp_path / "home" / "profiles" / f"as_of={as_of}" / "profile.parquet").exists()
    assert (tmp_path / "home" / "snapshots" / "training.parquet").exists()
    assert (tmp_path / "home" / "pre-credit" / f"pre_credit_list_{as_of}.csv").exists()
    assert "champion: version 1" in done.stdout and list((tmp_path / "home" / "reports").glob("model-*.html"))
    # a person reads it whole: at most 60 lines at 80 columns, ending with what to open next, every path there
    lines = done.stdout.splitlines()
    assert sum(max(1, -(-len(line) // 80)) for line in lines) <= 60, done.stdout
    assert "quarantined" in done.stdout and "what to open next" in done.stdout and not done.stderr.strip()
    named = [line.split(":", 1)[1].strip() for line in lines[lines.index("what to open next"):]
             if line.startswith(("  regulator's page:", "  data quality:", "  model report:", "  pre-credit list:",
                                 "  ingest report:", "  profile:"))]
    assert len(named) == 6 and all(Path(path).exists() for path in named), named
    page = Path(named[0]).read_text("utf-8")
    assert "预授信决策说明" in page and "@font-face" in page and "base64," in page  # renders from the file alone
    assert "bank key:" in done.stdout and "regulator key:" in done.stdout
    again = subprocess.run([sys.executable, "-m", "api.cli", "demo", "--enterprises", "3000", "--no-serve"],
                           capture_output=True, text=True, env=env, timeout=300)
    assert again.returncode == 0 and "the lake changed" in again.stdout  # a fresh lake each time
    # the same seed makes the same city, which retrains the same bundle: no new version, the champion stays
    assert "champion: version 1 stays" in again.stdout and "same bundle" in again.stdout
    assert "curl -s -X POST http://127.0.0.1:8000/v1/pre-credit" in done.stdout


def test_demo_on_a_city_too_small_to_train_says_so(tmp_path):
    env = {"XYD_HOME": str(tmp_path / "home"), "PATH": "", "COLUMNS": "120",
           "MLFLOW_TRACKING_URI": f"sqlite:///{tmp_path}/mlflow/mlflow.db"}
    done = subprocess.run([sys.executable, "-m", "api.cli", "demo", "--enterprises", "100", "--no-serve"],
                          capture_output=True, text=True, env=env, timeout=300)
    assert done.returncode == 1 and "cannot train on this city" in done.stderr
    assert "defaults among the matured loans after the 13-month warm-up" in " ".join(done.stderr.split())


def test_demo_refuses_to_replace_a_lake_it_did_not_make(tmp_path, monkeypatch, dirty_city):
    monkeypatch.setenv("XYD_HOME", str(tmp_path / "home"))
    monkeypatch.setenv("COLUMNS", "200")
    assert run("ingest", "--drop", str(dirty_city)).exit_code == 0
    result = run("demo", "--enterprises", "50")
    assert result.exit_code == 1 and "holds a lake that the demo did not make" in result.output
    assert (tmp_path / "home" / "lake" / "_manifest.json").exists()


def test_a_port_already_taken_is_said_at_once_before_any_work_or_any_serving_on(tmp_path, monkeypatch):
    import socket as sockets

    monkeypatch.setenv("XYD_HOME", str(tmp_path / "home"))
    with sockets.socket() as taken:
        taken.bind(("127.0.0.1", 0))
        taken.listen()
        port = taken.getsockname()[1]
        started = time.monotonic()
        result = run("demo", "--port", str(port))
        assert result.exit_code == 1 and f"cannot listen on 127.0.0.1:{port}" in result.output
        assert "choose another with --port" in result.output and time.monotonic() - started < 10
        assert not (tmp_path / "home" / "demo-city").exists()  # nothing generated for a service that cannot start
        # said before the work's modules load (MLflow and LightGBM alone took 2.6 s of a 4.5-s refusal)
        probe = (f"import sys\nfrom api.cli import main\ntry:\n    main(['demo', '--port', '{port}'])\n"
                 "except SystemExit as e:\n    print(e.code, sorted({'mlflow', 'lightgbm', 'models.run'} & set(sys.modules)))")
        said = subprocess.run([sys.executable, "-c", probe], capture_output=True, text=True, timeout=120,
                              env={**os.environ, "XYD_HOME": str(tmp_path / "home")})
        assert said.stdout.split()[0] == "1" and said.stdout.strip().endswith("[]"), (said.stdout, said.stderr)
        served = run("serve", "--port", str(port), "--workers", "1")
        assert served.exit_code == 1 and f"cannot listen on 127.0.0.1:{port}" in served.output
        assert "serving on" not in served.output


def test_readme_commands_and_source_table_are_current():
    from pathlib import Path

    from features.schemas import sources_markdown

    readme = (Path(__file__).parents[2] / "README.md").read_text("utf-8")
    table = readme.split("<!-- sources-table -->\n")[1].split("\n<!-- /sources-table -->")[0]
    assert table == sources_markdown()
    assert "<!-- run-command -->\n```sh\npython3 -m venv .venv" in readme
    assert "<!-- test-command -->\n```sh\npython3 -m venv .venv" in readme


def test_ingest_drop_prints_the_report_and_a_refused_file_exits_two(tmp_path, monkeypatch, dirty_city):
    monkeypatch.setenv("XYD_HOME", str(tmp_path / "home"))
    monkeypatch.setenv("COLUMNS", "200")
    bad = tmp_path / "water.csv"
    bad.write_text("用户统一社会信用代码,户号\n91350100M000100Y43,1\n", encoding="utf-8")
    refused = run("ingest", "water", str(bad))
    assert refused.exit_code == 1 and "missing required columns for water" in refused.output
    assert "nothing was written" in refused.output
    first = run("ingest", "--drop", str(dirty_city))
    assert first.exit_code == 0, first.output
    assert "the lake changed" in first.output and "quarantined" in first.output
    second = run("ingest", "--drop", str(dirty_city))
    assert second.exit_code == 0 and "nothing changed" in second.output
    assert run("ingest").exit_code == 2  # neither files nor --drop


def test_quality_prints_the_table_and_writes_html(tmp_path, monkeypatch, dirty_city):
    monkeypatch.setenv("XYD_HOME", str(tmp_path / "home"))
    monkeypatch.setenv("COLUMNS", "220")
    empty = run("quality")
    assert empty.exit_code == 1 and "lake under" in empty.output and "`xyd ingest --drop DIR`" in empty.output
    assert run("ingest", "--drop", str(dirty_city)).exit_code == 0
    result = run("quality", "--html", str(tmp_path / "q.html"))
    assert result.exit_code == 0, result.output
    assert "administrative_penalties" in result.output and "compliance_rate" in result.output
    page = (tmp_path / "q.html").read_text("utf-8")
    assert "<table" in page and "tax_filings" in page
    document = json.loads(run("quality", "--json", "--html", str(tmp_path / "again.html")).output)
    assert document["html"] == str(tmp_path / "again.html") and (tmp_path / "again.html").exists()
    sources = {row["source"] for row in document["sources"]}
    assert {"administrative_penalties", "tax_filings"} <= sources
    shares = [v for row in document["sources"] for k, v in row.items() if k == "compliance_rate" and v is not None]
    assert shares and all(0 <= v <= 1 for v in shares)
    assert isinstance(document["objections"], list)


def test_without_a_terminal_tables_print_at_full_width(tmp_path, monkeypatch, dirty_city):
    """Piped into a file or a log, a table is as wide as it needs: no row folded or cut at 80 columns."""
    monkeypatch.setenv("XYD_HOME", str(tmp_path / "home"))
    monkeypatch.delenv("COLUMNS", raising=False)
    assert run("ingest", "--drop", str(dirty_city)).exit_code == 0
    result = run("quality", "--html", str(tmp_path / "q.html"))
    header = next(line for line in result.output.splitlines() if "compliance_rate" in line)
    assert len(header) > 80 and "department" in header and "…" not in result.output


def _leaves(group: click.Group, path: tuple[str, ...] = ()):
    ctx = click.Context(group)
    for name in group.list_commands(ctx):
        command = group.get_command(ctx, name)
        if isinstance(command, click.Group):
            yield from _leaves(command, (*path, name))
        else:
            yield (*path, name), command


def _resolve(words: list[str]):
    """The command a typed ``xyd …`` line names, and the options it uses (None if none matches)."""
    command, used = main, []
    for word in words:
        if isinstance(command, click.Group) and not word.startswith("-"):
            found = command.get_command(click.Context(command), word)
            if found is None:
                return None, []
            command = found
        elif word.startswith("--"):
            used.append(word.split("=")[0])
    return command, used


def _typed_commands(text: str) -> list[list[str]]:
    import shlex

    out = []
    for line in text.splitlines():
        line = line.strip().split("  #")[0].strip()
        for prefix in ("xyd ", ".venv/bin/xyd "):
            if line.startswith(prefix):
                out.append(shlex.split(line[len(prefix):].split("|")[0].split(">")[0], posix=True))
    return out


def test_every_command_has_an_example_and_the_readme_uses_only_commands_and_options_that_exist():
    from pathlib import Path

    readme = (Path(__file__).parents[2] / "README.md").read_text("utf-8")
    blocks = "\n".join(part.split("```")[0] for part in readme.split("```sh\n")[1:])
    problems = []
    for words in _typed_commands(blocks):
        command, used = _resolve(words)
        if command is None:
            problems.append(f"README: xyd {' '.join(words)} names no command")
            continue
        known = {o for p in command.params for o in p.opts}
        problems += [f"README: xyd {' '.join(words)}: {o} is no option of it" for o in used if o not in known]
    for path, command in _leaves(main):
        help_text = command.help or ""
        examples = [line.split("Example:", 1)[1] for line in help_text.splitlines() if "Example:" in line]
        if not examples:
            problems.append(f"xyd {' '.join(path)} --help shows no example")
        for example in examples:
            for words in _typed_commands(example.strip()):
                found, used = _resolve(words)
                known = {o for p in found.params for o in p.opts} if found is not None else set()
                if found is None or any(o not in known for o in used):
                    problems.append(f"xyd {' '.join(path)}: its example {example.strip()!r} does not run as written")
        if f"xyd {' '.join(path)}" not in readme:
            problems.append(f"README names no `xyd {' '.join(path)}`")
    assert not problems, "\n".join(problems)


def test_every_enterprise_code_the_readme_and_the_examples_act_on_is_a_valid_code():
    """A reader copies a command and it must not fail on its own example code: every Unified Social
    Credit Code a command of the README or of `--help` acts on passes the check digits (only
    `xyd uscc check` may show an invalid one, to show what it says of it)."""
    import re
    from pathlib import Path

    from features.uscc import check

    readme = (Path(__file__).parents[2] / "README.md").read_text("utf-8")
    blocks = "\n".join(part.split("```")[0] for part in readme.split("```sh\n")[1:])
    examples = "\n".join(line.split("Example:", 1)[1].strip() for _, command in _leaves(main)
                         for line in (command.help or "").splitlines() if "Example:" in line)
    commands = [words for words in _typed_commands(blocks + "\n" + examples) if words[:2] != ["uscc", "check"]]
    codes = {code for words in commands for word in words
             for code in re.findall(r"(?<![0-9A-Z])[0-9A-Z]{18}(?![0-9A-Z])", word)}
    assert codes, "the README acts on no enterprise code: the test reads nothing"
    assert {code: check(code).reason for code in codes if not check(code).valid} == {}


@pytest.mark.parametrize("args, remedy", [
    (["quality"], "`xyd ingest --drop DIR`"),
    (["features", "build", "--as-of", "2026-06-30"], "`xyd ingest enterprise_registry FILE`"),
    (["features", "snapshots"], "`xyd ingest enterprise_registry FILE`"),
    (["features", "show", VALID, "--as-of", "2026-06-30"], "`xyd features build --as-of 2026-06-30`"),
    (["features", "publish", "--as-of", "2026-06-30"], "`xyd features build --as-of 2026-06-30`"),
    (["train"], "`xyd ingest enterprise_registry FILE`"),
    (["promote", "--dry-run"], "`xyd train`"),
    (["score", "--as-of", "2026-06-30"], "`xyd promote`"),
    (["monitor", "--as-of", "2026-06-30"], "`xyd promote`"),
])
def test_a_missing_lake_profile_or_model_is_one_line_naming_the_command_that_makes_it(args, remedy, tmp_path,
                                                                                     monkeypatch):
    monkeypatch.setenv("XYD_HOME", str(tmp_path / "home"))
    monkeypatch.setenv("MLFLOW_TRACKING_URI", f"sqlite:///{tmp_path}/mlflow.db")
    result = run(*args)
    assert result.exit_code == 1, result.output  # refused (2 is a command line that is not one)
    assert result.exception is None or isinstance(result.exception, SystemExit)  # no traceback
    lines = [line for line in result.stderr.splitlines() if line.strip()]
    assert len(lines) == 1 and lines[0].startswith("error: ") and remedy in lines[0], result.output
    assert not result.stdout.strip(), result.stdout  # nothing a script would read as output


@pytest.mark.parametrize("args, said", [
    (["nosuch"], "xyd: No such command 'nosuch'. (xyd --help)"),
    (["uscc", "check"], "xyd uscc check: Missing argument 'CODE...'. (xyd uscc check --help)"),
    (["clients", "add", "--role", "king", "--name", "x"], "xyd clients add: Invalid value for '--role'"),
    (["score", "--as-of", "30/06/2026"], "xyd score: Invalid value for '--as-of'"),
])
def test_a_command_line_that_is_not_one_is_one_line_on_standard_error_and_exit_2(args, said):
    """click's usage errors take 4 to 7 lines; a script's log gets one, naming the command's help."""
    result = CliRunner().invoke(main, args, prog_name="xyd")
    assert result.exit_code == 2 and result.stdout == ""
    assert len(result.stderr.splitlines()) == 1 and result.stderr.startswith(said), result.stderr
