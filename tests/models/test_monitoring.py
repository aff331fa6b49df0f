"""Monitoring as an analyst decides from it: a city where nothing changed is stable; a city whose
electricity company stopped delivering says retrain and names it; drift compares like with like
and says how many rows each figure rests on."""

from __future__ import annotations

import datetime as dt

import numpy as np
import pandas as pd
import pytest

from models.monitoring import (MIN_ROWS, SPARSE_SHARE, drift, drift_by, missing_by_source, monitor,
                               realised_by_grade, verdict)

AS_OF = dt.date(2026, 6, 30)


@pytest.fixture(scope="module")
def silent_electricity_home(model_city, tmp_path_factory):
    """The model city as the lake would hold it had the electricity company delivered nothing
    after September 2025 (its monthly files from 2025-10 on never arrived)."""
    from features.ingest.run import drop_files, ingest

    home = tmp_path_factory.mktemp("silent-electricity")
    files = [(source, path) for source, path in drop_files(model_city)
             if not (source == "electricity" and path.stem[-7:] >= "2025-10")]
    assert len(files) < len(drop_files(model_city))
    ingest(home, files)
    return home


def test_a_city_where_nothing_changed_is_stable(trained, model_home):
    found = monitor(trained.bundle, model_home, AS_OF)
    assert found.verdict == "stable", found.rules
    assert found.applicants.iloc[0]["variable"] == "score"  # the score first
    assert found.applicants.iloc[0]["band"] == "stable"
    assert {"before_rows", "after_rows"} <= set(found.applicants.columns)
    assert found.applicants["before_rows"].iloc[0] < found.population["before_rows"].iloc[0]  # borrowers vs everyone
    assert not found.silent["silent"].any()
    assert found.realised.iloc[-1]["grade"] == "all" and found.realised.iloc[-1]["loans"] > 0
    assert set(found.populations) == {"training applicants", "recent applicants", "population then", "population now",
                                      "matured since training"}


def test_a_department_that_stops_delivering_means_retrain_and_is_named(trained, silent_electricity_home):
    found = monitor(trained.bundle, silent_electricity_home, AS_OF)
    assert found.verdict == "retrain"
    assert any(rule.startswith("electricity: no delivery since 2025-") for rule in found.rules), found.rules
    silent = found.silent.set_index("source")
    assert silent.loc["electricity", "silent"] and silent.loc["electricity", "silent_days"] > 200
    assert not silent.drop(index="electricity")["silent"].any()
    worst = found.missing.iloc[0]
    assert worst["source"] == "electricity" and worst["change"] >= 0.2
    electricity = found.applicants[found.applicants["variable"].str.startswith("elec_")]
    assert (electricity["band"] == "act").any()


def test_sparse_features_are_judged_by_their_non_zero_share(trained):
    rows = 2_000
    generator = np.random.default_rng(0)
    frame = trained.evaluation.frame.sample(rows, replace=True, random_state=0).reset_index(drop=True)
    sparse = next(f for f in trained.bundle.features if f.startswith("penalty_count"))
    before = frame.assign(**{sparse: (generator.random(rows) < 0.03).astype(float)})
    same = frame.assign(**{sparse: (generator.random(rows) < 0.03).astype(float)})
    tripled = frame.assign(**{sparse: (generator.random(rows) < 0.09).astype(float)})
    assert (before[sparse] == 0).mean() >= SPARSE_SHARE
    stable = drift(trained.bundle, before, same).set_index("variable").loc[sparse]
    moved = drift(trained.bundle, before, tripled).set_index("variable").loc[sparse]
    assert stable["measure"] == moved["measure"] == "non-zero share"
    assert stable["band"] == "stable" and moved["band"] == "act" and moved["value"] > 2


def test_thin_comparisons_are_shown_but_not_judged(trained):
    frame = trained.evaluation.frame
    table = drift(trained.bundle, frame.head(MIN_ROWS - 1), frame.tail(MIN_ROWS - 1))
    assert (table["band"] == "too few rows").all()
    by = drift_by(trained.bundle, frame, frame, "district_code")
    assert not by["district_code"].str.fullmatch(r"\d+").any()  # districts by name


def test_the_verdict_names_the_rule_that_produced_it(trained):
    frame = trained.evaluation.frame
    applicants = drift(trained.bundle, frame, frame)
    missing = missing_by_source(trained.bundle, frame, frame)
    realised = realised_by_grade(trained.bundle, frame)
    said, rules = verdict(applicants, applicants, missing, realised, (0.67, 1.5))
    assert said == "stable" and rules == ["no rule fired: score, sources, features and realised default all within "
                                          "their bands"]
    shifted = applicants.copy()
    shifted.loc[0, ["value", "band"]] = [0.31, "act"]
    said, rules = verdict(shifted, applicants, missing, realised, (0.67, 1.5))
    assert said == "retrain" and rules[0].startswith("applicants' score PSI 0.310")
    overcharged = realised.copy()
    overcharged.loc[overcharged["grade"] == "all", ["defaults", "realised_rate", "low", "high", "predicted_pd"]] = \
        [40, 0.10, 0.08, 0.12, 0.02]
    said, rules = verdict(applicants, applicants, missing, overcharged, (0.67, 1.5))
    assert said == "retrain" and "all matured loans since training" in rules[0]
    assert pd.isna(realised_by_grade(trained.bundle, frame.head(0)).iloc[-1]["realised_rate"])
