"""``xyd demo``: the main job on embedded defaults, from nothing.

Each stage of the platform joins this command as it lands: today the demo city is generated
and ingested into the lake under ``XYD_HOME``, with the ingest report and the quality report;
the enterprise profile is built as of the city's last day with every loan's training snapshot;
a challenger is trained, registered in MLflow and promoted to champion; the champion writes the
pre-credit list; the profile is published to the service's database (SQLite under ``XYD_HOME``),
a demo bank gets a key and an enterprise's authorisation, and the service starts.
"""

from __future__ import annotations

import datetime as dt
import json
import shutil

import click
from rich.console import Console
from rich.table import Table

from api.cli import InputError
from features.home import xyd_home

DEMO_CITY = dict(enterprises=12_000, months=36, seed=2024, dirty=0.01, loan_rate=8.0)
"""36 months so that two years of loans have matured; eight times the usual loans, so that the
book looks like a young platform's (about 140 defaults after the warm-up, 2,700 loans to train
on): its champion passes its own gate unforced (out-of-time AUC 0.816 against the benchmark
scorecard's 0.738, ECE 0.0095) and approves about 45 % of the city (measured on the city ending 2026-06; the demo's
city ends at the newest month delivered by the day it runs, :func:`newest_delivered_month`). The whole
demo took 97 s before serving on a 2-core machine (2026-12-07, the city ending 2026-10), the README's
"about a minute and a half"."""
DEMO_MARKER = ".made-by-xyd-demo"


def newest_delivered_month(today: dt.date) -> str:
    """The demo city's last month (YYYY-MM): the newest month every department has delivered by
    ``today``, so that the demo's profiles are as fresh as a live platform's and the policy's
    freshness limit lets the service decide on them."""
    import numpy as np

    from features.profile.pointintime import anchor_months

    return str(np.datetime64(int(anchor_months(np.array([np.datetime64(today, "D")]))[0]), "M"))


@click.command(short_help="The whole platform on a generated city, then serve it.")
@click.option("--enterprises", type=int, default=DEMO_CITY["enterprises"], show_default=True,
              help="Size of the demo city.")
@click.option("--port", type=int, default=8000, show_default=True, help="Where the service listens.")
@click.option("--no-serve", is_flag=True, help="Set everything up, print the key and stop (no server).")
@click.option("--json", "as_json", is_flag=True, help="End with one JSON object (paths, keys, URLs) for a script.")
def demo(enterprises: int, port: int, no_serve: bool, as_json: bool) -> None:
    """Run the platform end to end on embedded defaults (state under XYD_HOME, default ./var):
    a synthetic city is generated and ingested, profiles built, a model trained and promoted,
    the pre-credit list written, a demo bank given a key, and the service started. Ends with what
    to open next.

    Example: xyd demo --no-serve"""
    console = Console(stderr=as_json)  # with --json, standard output carries the JSON alone
    home = xyd_home()
    out = home / "demo-city"
    marker = home / "lake" / DEMO_MARKER
    if (home / "lake" / "_manifest.json").exists() and not marker.exists():
        raise InputError(f"{home} holds a lake that the demo did not make; run the demo with another XYD_HOME")
    if not no_serve:  # a port already taken is said now, not after minutes of work and keys printed for it
        from api.cli.service import listening_socket

        listening_socket("127.0.0.1", port).close()
    # the work's modules load only now: a busy port or a foreign lake is said within a second
    from api.cli.synth import run_synth
    from features.ingest.run import drop_files, ingest
    from features.profile.build import ProfileBuildError, build, training_snapshots
    from features.quality import quality_html, quality_table
    from features.synth.city import CitySpec, city_last_day
    from models import tracking
    from models.batch import score_profile, summary as batch_summary
    from models.estimator import ModelInputError
    from models.run import SameAsChampion, promote, train_challenger

    spec = CitySpec(**{**DEMO_CITY, "enterprises": enterprises}, end=newest_delivered_month(dt.date.today()))
    console.print(f"[bold]1/6 synthetic city[/bold] → {out}")
    city = run_synth(spec, out, force=True, console=console, table=False)
    console.print(f"    {spec.enterprises:,} entities, {city.window[0]}…{city.window[1]}, "
                  f"{sum(city.rows.values()):,} rows in {sum(len(f) for f in city.files.values()):,} files; "
                  f"{city.loans:,} loans")
    console.print(f"[bold]2/6 ingest[/bold] → {home / 'lake'}")
    # the demo starts from nothing: a lake left by an earlier demo would hold another city
    for folder in ("lake", "quarantine", "profiles", "snapshots", "pre-credit"):
        shutil.rmtree(home / folder, ignore_errors=True)
    (home / "lake").mkdir(parents=True)
    marker.write_text("this lake was made by xyd demo and is replaced by the next one\n", "utf-8")
    with console.status("ingesting the departments' files") as status:
        files = drop_files(out)
        report = ingest(home, files, progress=lambda path, rows: status.update(f"ingesting {path.rsplit('/', 1)[-1]}"))
    totals = report.totals()
    reasons: dict[str, int] = {}
    for counts in report.reasons_by_source().values():
        for reason, n in counts.items():
            reasons[reason] = reasons.get(reason, 0) + n
    top = ", ".join(f"{k} {v:,}" for k, v in sorted(reasons.items(), key=lambda item: -item[1])[:2])
    console.print(f"    {totals['rows_in']:,} rows: {totals['accepted']:,} accepted, {totals['duplicate']:,} "
                  f"duplicate, {totals['quarantined']:,} quarantined ({top}); "
                  + ("the lake changed" if report.changed else "nothing changed"), soft_wrap=True)
    quality = home / "reports" / "quality-demo.html"
    quality.parent.mkdir(parents=True, exist_ok=True)
    quality.write_text(quality_html(quality_table(home)), "utf-8")

    as_of = city_last_day(spec)
    console.print(f"[bold]3/6 profiles[/bold] as of {as_of} and training snapshots")
    with console.status("building the profile and every loan's profile at grant"):
        result = build(home, as_of)
        snapshots = training_snapshots(home)
    snapshot_file = home / "snapshots" / "training.parquet"
    snapshot_file.parent.mkdir(parents=True, exist_ok=True)
    snapshots.to_parquet(snapshot_file, index=False)
    console.print(f"    {len(result.profile):,} enterprises, {result.profile.shape[1] - 2} features; "
                  f"{len(snapshots):,} loans' profiles at grant")

    console.print(f"[bold]4/6 train and promote[/bold] (MLflow: {tracking.tracking_uri()})")
    try:
        with console.status("training") as status:
            trained = train_challenger(home, snapshots, progress=lambda message: status.update(message + " …"))
    except (ProfileBuildError, ModelInputError) as error:
        raise InputError(f"cannot train on this city: {error}; a city of 3,000 enterprises or more has enough "
                         "matured loans") from None
    try:
        promotion = promote(home, snapshots=snapshots)
    except SameAsChampion as same:
        # an earlier demo made this very city (the same seed and months): its champion is this bundle
        promotion = None
        console.print(f"    champion: version {same.champion_version} stays: the model trained now is the same bundle "
                      f"({trained.bundle.meta['bundle_id']})")
    if promotion is not None and not promotion.promoted:
        # the demo's city is new: its first model goes in (a champion of an earlier demo city does
        # not describe it), and the log says so and why
        failed = ", ".join(c.rule for c in promotion.checks if not c.holds)
        why = ("the first model of a new platform" if promotion.champion_version is None
               else f"a new demo city replaces the champion of an earlier one (version {promotion.champion_version})")
        promotion = promote(home, force=True, reason=f"xyd demo: {why}; gate: {failed}", snapshots=snapshots)
    if promotion is not None:
        console.print(f"    champion: version {promotion.challenger_version}, out-of-time AUC "
                      f"{trained.evaluation.metrics['auc']:.3f}, ECE {trained.evaluation.metrics['ece']:.4f}"
                      f"{' (forced past the gate: ' + ', '.join(c.rule for c in promotion.verdict.failed) + ')' if promotion.forced else ''}")

    console.print(f"[bold]5/6 pre-credit list[/bold] as of {as_of}")
    listed = score_profile(home, as_of, tracking.load_bundle(tracking.CHAMPION, home / "models" / "registry-cache"))
    console.print(grade_table(batch_summary(listed.frame)))

    console.print("[bold]6/6 the service[/bold]: profiles published, a demo bank and regulator with keys")
    key, regulator_key, code, authorization = set_up_service(home, result.profile, as_of)
    request_id, decided, page_path = first_decision(home, key, regulator_key, code, authorization)
    examples = write_examples(home, as_of, code, authorization, key, regulator_key)
    console.print(f"    a first decision: {code} grade {decided['grade']}, {decided['decision']}, "
                  f"limit ¥{decided['limit_yuan']:,} (request {request_id})", soft_wrap=True)
    base = f"http://127.0.0.1:{port}"
    opened = {"regulator's page": str(page_path), "data quality": str(quality), "model report": str(trained.report_path),
              "pre-credit list": str(listed.csv), "ingest report": str(report.path), "profile": str(result.path),
              "the README's examples": str(examples)}
    ask = (f"curl -s -X POST {base}/v1/pre-credit -H 'Authorization: Bearer {key}' -H 'Content-Type: "
           f"application/json' -d '{{\"uscc\": \"{code}\", \"authorization_id\": \"{authorization}\", "
           f"\"requested_amount\": 500000}}'")
    page = (f"curl -s '{base}/v1/decisions/{request_id}/report?self_contained=true' "
            f"-H 'Authorization: Bearer {regulator_key}' > decision.html")
    mlflow_ui = f"mlflow ui --backend-store-uri {tracking.tracking_uri()}"
    if as_json:
        click.echo(json.dumps({"home": str(home), "as_of": str(as_of), "files": opened, "bank_key": key,
                               "regulator_key": regulator_key, "uscc": code, "authorization_id": authorization,
                               "service": base, "docs": f"{base}/docs", "ask": ask, "regulator_page": page,
                               "mlflow_ui": mlflow_ui}, ensure_ascii=False, indent=1))
    else:
        # soft wrap: a path or a command cut into lines could not be copied whole (nor read by a pipe)
        console.print("\n[bold]what to open next[/bold]")
        for name, path in opened.items():
            console.print(f"  {name + ':':19}{path}", soft_wrap=True)
        console.print(f"  {'bank key:':19}{key} (shown once)\n  {'regulator key:':19}{regulator_key} (shown once)\n"
                      f"  ask for a decision:\n    {ask}\n"
                      f"  a regulator's page, from the service:\n    {page}\n"
                      f"  {'API docs:':19}{base}/docs (Authorize with the bank key)\n"
                      f"  {'MLflow:':19}{mlflow_ui}", soft_wrap=True)
    if no_serve:
        return
    from api.cli.service import serve
    click.get_current_context().invoke(serve, host="127.0.0.1", port=port, workers=2)


def grade_table(summary) -> Table:
    """The pre-credit list per grade, as a person reads it."""
    table = Table()
    for header in ("grade", "enterprises", "mean PD", "approved", "referred", "declined", "total limit"):
        table.add_column(header, justify="left" if header == "grade" else "right")
    for row in summary.itertuples(index=False):
        table.add_row(row.grade, f"{row.enterprises:,}", f"{row.mean_pd:.2%}", f"{row.approved:,}", f"{row.referred:,}",
                      f"{row.declined:,}", f"¥{row.total_limit_yuan / 1e6:,.1f} m")
    return table


def first_decision(home, bank_key: str, regulator_key: str, code: str, authorization: str) -> tuple[str, dict, object]:
    """One decision for the demo enterprise, asked of the service in process as a bank would, and
    its regulator's page saved whole under ``XYD_HOME/reports``: (request id, answer, page path)."""
    import warnings

    with warnings.catch_warnings():  # Starlette's advice to its own test users (use httpx2) is not the demo's news
        warnings.simplefilter("ignore")
        from fastapi.testclient import TestClient

    from api.main import create_app
    from api.settings import Settings

    with TestClient(create_app(Settings(home=home))) as client:
        answer = client.post("/v1/pre-credit", json={"uscc": code, "authorization_id": authorization,
                                                      "requested_amount": 500000},
                             headers={"Authorization": f"Bearer {bank_key}"})
        answer.raise_for_status()
        decided = answer.json()
        page = client.get(f"/v1/decisions/{decided['request_id']}/report", params={"self_contained": "true"},
                          headers={"Authorization": f"Bearer {regulator_key}"})
        page.raise_for_status()
    path = home / "reports" / f"decision-{decided['request_id']}.html"
    path.write_text(page.text, "utf-8")
    return decided["request_id"], decided, path


EXAMPLES_FILE = "demo.env"
"""Under XYD_HOME: the demo city's day, codes and keys, as shell variables the README's commands use."""
DEMO_LETTER = "demo-authorisation-letter.txt"


def write_examples(home, as_of, code: str, authorization: str, bank_key: str, regulator_key: str):
    """Write ``XYD_HOME/demo.env`` (readable by its owner alone: it holds the demo's keys), so that
    ``source var/demo.env`` gives the README's commands this city's values: ``AS_OF`` (the
    profile's day), ``USCC`` and ``AUTHORIZATION_ID`` (the enterprise the demo bank may ask
    about), ``LETTER`` (that authorisation's letter), ``BANK_KEY`` and ``REGULATOR_KEY``, and two
    records one may object to: ``PENALISED_USCC``/``PENALTY_NO`` (an administrative penalty) and
    ``LISTED_USCC``/``CASE_NO`` (a dishonest-debtor listing), each known by ``AS_OF``."""
    import os
    import shlex

    import pandas as pd

    from features.lake import Lake

    lake = Lake(home)
    day = pd.Timestamp(as_of)

    def known_record(source: str, key: str, dated: str, until: str | None = None) -> tuple[str, str] | None:
        rows = lake.read(source, columns=["uscc", key, dated, "reported_date", *([until] if until else [])])
        known = (pd.to_datetime(rows[dated]) <= day) & (pd.to_datetime(rows["reported_date"]) <= day)
        if until:  # still in force that day
            known &= ~(pd.to_datetime(rows[until]) <= day)
        rows = rows[known]
        if rows.empty:
            return None
        first = rows.sort_values(["uscc", key]).iloc[0]
        return str(first["uscc"]), str(first[key])

    values = {"AS_OF": str(as_of), "USCC": code, "AUTHORIZATION_ID": authorization, "LETTER": str(home / DEMO_LETTER),
              "BANK_KEY": bank_key, "REGULATOR_KEY": regulator_key}
    lacking = []
    for (code_name, key_name), found, source in (
            (("PENALISED_USCC", "PENALTY_NO"), known_record("administrative_penalties", "decision_no", "decision_date"),
             "administrative_penalties"),
            (("LISTED_USCC", "CASE_NO"), known_record("dishonest_debtors", "case_no", "listing_date", "removal_date"),
             "dishonest_debtors")):
        if found is None:  # a small demo city may hold none: its example is left out, said in the file
            lacking.append(f"# no {source} record known by {as_of} in this city: {code_name} and {key_name} are unset\n")
        else:
            values[code_name], values[key_name] = found
    path = home / EXAMPLES_FILE
    path.unlink(missing_ok=True)
    descriptor = os.open(path, os.O_WRONLY | os.O_CREAT | os.O_EXCL, 0o600)
    with os.fdopen(descriptor, "w", encoding="utf-8") as out:
        out.write("# written by xyd demo: this demo city's day, codes and keys for the README's commands\n")
        out.writelines(f"export {name}={shlex.quote(value)}\n" for name, value in values.items())
        out.writelines(lacking)
    return path


def set_up_service(home, profile, as_of) -> tuple[str, str, str, str]:
    """Publish the profile, add a demo bank, a demo regulator and one enterprise's authorisation
    for the bank; returns (the bank's key, the regulator's key, the enterprise's code, the
    authorisation id)."""
    import hashlib

    from api.access import clients
    from api.cli.service import database
    from api.db.engine import writing
    from api.precredit import publishing, repository
    from features.lake import Lake
    from features.profile.evidence import evidence_for
    from features.profile.store import registered_names
    from features.registry import feature_names, feature_set_version

    factory = database()
    code = str(profile["uscc"].iloc[0])
    today = dt.date.today()
    letter = home / DEMO_LETTER
    letter.write_text(f"授权书（演示）demo authorisation letter: {code} authorises the demo bank to ask for its "
                      f"pre-credit assessment, {today} to {today + dt.timedelta(days=365)}\n", "utf-8")
    evidence = evidence_for(Lake(home), as_of, profile)
    with writing(factory) as session:
        publishing.publish_profiles(session, profile, feature_names(), feature_set_version(), as_of,
                                    registered_names(home, as_of), evidence=evidence,
                                    deliveries=Lake(home).deliveries(as_of))
        bank, key = clients.add_client(session, "演示银行 demo bank", "bank")
        _, regulator_key = clients.add_client(session, "演示监管 demo regulator", "regulator")
        record = repository.add_authorization(session, code, bank.id, "信易贷预授信（演示）", "全部 all sources",
                                              today, today + dt.timedelta(days=365), "demo",
                                              hashlib.sha256(letter.read_bytes()).hexdigest())
    return key, regulator_key, code, record.id
