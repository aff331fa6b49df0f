"""Monitoring as an analyst decides from it: a city where nothing changed is stable; a city whose
electricity company stopped delivering says retrain and names it; drift compares like with like
and says how many rows each figure rests on."""

from __future__ import annotations

import datetime as dt
import json
import shutil
from pathlib import Path

import numpy as np
import pandas as pd
import pyarrow as pa
import pyarrow.parquet as pq
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


# ---------------------------------------------------------------- as of an earlier day

EARLIER = dt.date(2026, 4, 15)
"""An as-of well inside the model city (its lake ends on 2026-06-30): in mid-month, so that loans granted
later that month are there to be wrongly seen, and late enough that some loans granted after the
champion's fitted windows have matured (12 months) by then."""


def loans_reported_on(lake_loans: pd.DataFrame, city: Path, day: dt.date) -> pd.DataFrame:
    """The banks' loan report as it read on ``day``, from the city's ground truth by the generator's
    own rule: only loans granted by then; a default (Y) once it has happened, a repayment (N) once the
    loan is 12 months old, nothing before; days past due only as far as a known default shows them."""
    from features.synth.city import GROUND_TRUTH

    truth = pd.read_parquet(Path(city) / GROUND_TRUTH / "loans.parquet").set_index("loan_no")
    on = pd.Timestamp(day)
    frame = lake_loans[lake_loans["grant_date"] <= on].reset_index(drop=True)
    known = truth.loc[frame["loan_no"]]
    defaulted = (known["defaulted_12m"] & (known["default_date"] <= on)).to_numpy()
    matured = (frame["grant_date"] + pd.DateOffset(months=12) <= on).to_numpy()
    return frame.assign(default_12m=np.where(defaulted, "Y", np.where(matured, "N", None)),
                        worst_dpd=np.where(defaulted, 90, 0),
                        reported_date=pd.Series(on, index=frame.index).astype(frame["reported_date"].dtype))


def reported_monthly(home: Path, city: Path, day: dt.date, out: Path) -> Path:
    """A home whose lake is the lake under ``home`` with, before the banks' report on its last day,
    their report as it read on ``day``: the test city's banks report once, at the end, so without
    it nothing about loans was known on ``day`` at all, and an outcome known then could not be told
    from one reported later."""
    from features.lake import MANIFEST, Lake

    shutil.copytree(Path(home) / "lake", Path(out) / "lake", ignore=shutil.ignore_patterns(".lock"))
    lake = Lake(out)
    earlier = loans_reported_on(lake.read("loan_outcomes"), city, day)
    table = pa.Table.from_pandas(earlier, schema=pq.read_schema(lake.parts("loan_outcomes")[0]), preserve_index=False)
    name = lake.stage("loan_outcomes", table)
    manifest = lake.manifest()
    manifest["lake"]["loan_outcomes"].insert(0, name)  # ingested before the later report
    manifest["runs"].insert(0, {"run_id": f"banks-report-{day}", "started": f"{day}T23:00:00"})
    (lake.root / MANIFEST).write_text(json.dumps(manifest, ensure_ascii=False, indent=1), "utf-8")
    return Path(out)


def lake_as_of(home: Path, as_of: dt.date, out: Path) -> Path:
    """A home whose lake is the lake under ``home`` as it stood at the end of ``as_of``: per source
    (the banks' loan reports too), only the rows the platform had learned of by then (``known_date``
    on or before ``as_of``), in the same parts and order.

    One thing a later notice may change about an earlier day, by the point-in-time rules: a credit
    repair (or removal from a list) dated on or before ``as_of`` but reported after it applies from
    its own date (:mod:`features.profile.pointintime`). The cut would drop such a notice and so differ
    from the whole lake for a reason that is no look-ahead: a day that straddles one is refused."""
    from features.lake import Lake
    from features.schemas import SOURCES

    shutil.copytree(Path(home) / "lake", Path(out) / "lake", ignore=shutil.ignore_patterns(".lock"))
    lake, day = Lake(out), pd.Timestamp(as_of)
    for source in lake.manifest()["lake"]:
        spec, parts = SOURCES[source], lake.parts(source)
        tables = [pq.read_table(path) for path in parts]
        every = [table.to_pandas() for table in tables]
        frames = [frame[frame[spec.known_date] <= day].reset_index(drop=True) for frame in every]
        if spec.repair_column:
            dated = pd.concat(every, ignore_index=True).groupby("_key_hash")[spec.repair_column].min()
            kept = pd.concat(frames, ignore_index=True).groupby("_key_hash")[spec.repair_column].min()
            late = dated[(dated <= day) & ~(kept.reindex(dated.index) <= dated)]
            assert late.empty, f"{source}: {len(late)} repairs dated by {as_of} were reported after it; pick another day"
        for path, table, frame in zip(parts, tables, frames):
            pq.write_table(pa.Table.from_pandas(frame, schema=table.schema, preserve_index=False), path)
    return Path(out)


def test_the_loan_report_rebuilt_for_a_day_is_the_banks_report_on_the_lakes_last_day(model_home, model_city):
    """The banks' report the as-of tests add for an earlier day follows the generator's rule: rebuilt
    for the lake's last day it is the report the lake holds (days past due aside, which nothing reads
    from it), so the earlier one is what the banks would have said then."""
    from features.lake import Lake

    held = Lake(model_home).read("loan_outcomes")
    rebuilt = loans_reported_on(held, model_city, AS_OF)
    pd.testing.assert_frame_equal(rebuilt.drop(columns="worst_dpd"), held.drop(columns="worst_dpd"))
    assert rebuilt["default_12m"].isna().any() and (rebuilt["default_12m"] == "Y").any()


def test_a_lake_cut_on_its_last_day_is_the_lake(model_home, tmp_path):
    """The cut the as-of tests compare against changes nothing when nothing came after the day: every
    source reads back as it is (so a difference they find comes from what arrived later, not from the
    copy)."""
    from features.lake import Lake
    from features.schemas import SOURCES

    cut, whole = Lake(lake_as_of(model_home, AS_OF, tmp_path / "cut")), Lake(model_home)
    for source in SOURCES:
        pd.testing.assert_frame_equal(cut.read(source), whole.read(source), obj=source)


@pytest.fixture(scope="module")
def lakes_on_an_earlier_day(model_home, model_city, tmp_path_factory) -> tuple[Path, Path]:
    """The model city's lake with the banks' report of :data:`EARLIER` (a copy: monitoring stores the
    profiles it builds), and that lake cut to :data:`EARLIER`."""
    whole = reported_monthly(model_home, model_city, EARLIER, tmp_path_factory.mktemp("whole-lake"))
    return whole, lake_as_of(whole, EARLIER, tmp_path_factory.mktemp("lake-as-of"))


@pytest.fixture(scope="module")
def monitored_on_an_earlier_day(trained, lakes_on_an_earlier_day):
    """``monitor`` as of :data:`EARLIER` on the whole lake and on the lake cut to that day."""
    whole, cut = lakes_on_an_earlier_day
    return monitor(trained.bundle, whole, EARLIER), monitor(trained.bundle, cut, EARLIER)


def test_monitoring_as_of_an_earlier_day_sees_only_what_the_lake_held_that_day(monitored_on_an_earlier_day):
    """Promise: monitoring as of a day before the lake's last sees only what was known on that day.
    Every drift figure (training borrowers against recent applicants, score first; the living
    population against itself a year before, and the rows compared), every source's missing share
    among applicants and every source's silence are the same on the whole lake as on the lake cut to
    that day, and the populations are described in the same words."""
    whole, cut = monitored_on_an_earlier_day
    assert cut.applicants["after_rows"].iloc[0] >= MIN_ROWS and len(cut.population) and len(cut.silent)
    for name in ("applicants", "population", "missing", "silent", "population_then", "population_now"):
        pd.testing.assert_frame_equal(getattr(whole, name), getattr(cut, name), obj=name)
    assert (pd.to_datetime(whole.silent["last_delivery"]) <= pd.Timestamp(EARLIER)).all()
    assert {k: v for k, v in whole.populations.items() if k != "matured since training"} == \
        {k: v for k, v in cut.populations.items() if k != "matured since training"}


def test_realised_default_as_of_an_earlier_day_counts_only_outcomes_known_that_day(
        trained, model_city, monitored_on_an_earlier_day):
    """Promise: realised against predicted default as of a day counts only the loans matured by that
    day (12 months after grant), with the outcomes the banks had reported by then: per grade the same
    on the whole lake as on the lake cut to that day, and so the same verdict and rules."""
    from features.synth.city import GROUND_TRUTH

    whole, cut = monitored_on_an_earlier_day
    truth = pd.read_parquet(model_city / GROUND_TRUTH / "loans.parquet")
    split = trained.bundle.meta["split"]
    fitted_until = pd.Period(max(split[w][1] for w in ("train", "valid", "calib") if split[w][0]), "M")
    matured = truth[(truth["grant_date"].dt.to_period("M") > fitted_until)
                    & (truth["grant_date"] + pd.DateOffset(months=12) <= pd.Timestamp(EARLIER))]
    everything = cut.realised.set_index("grade").loc["all"]
    assert everything["loans"] == len(matured) > 0 and everything["defaults"] == matured["defaulted_12m"].sum() > 0
    pd.testing.assert_frame_equal(whole.realised, cut.realised, obj="realised")
    assert whole.populations["matured since training"] == cut.populations["matured since training"]
    assert (whole.verdict, whole.rules) == (cut.verdict, cut.rules)


def test_the_regulators_source_freshness_as_of_an_earlier_day_is_what_had_arrived_by_then(lakes_on_an_earlier_day):
    """Promise: the regulator's page says, per source, the newest delivery the profile's day saw
    (:meth:`features.lake.Lake.deliveries`, its only as-of input): as of an earlier day the same on
    the whole lake as on the lake cut to that day, and never a delivery after it."""
    from features.lake import Lake

    whole, cut = (Lake(home) for home in lakes_on_an_earlier_day)
    seen = whole.deliveries(EARLIER)
    assert seen == cut.deliveries(EARLIER)
    assert all(day is None or day <= EARLIER.isoformat() for day in seen.values())
    assert whole.deliveries(AS_OF) != seen  # the lake did receive more after the day


# ---------------------------------------------------------------- the rules on hand-built inputs
# Fast: no trained model, no model city. A stand-in bundle decides from columns of the frame it is
# given (``_pd``, ``_score``, ``_grade``), so every figure can be set exactly.

import math  # noqa: E402
import warnings  # noqa: E402
from types import SimpleNamespace  # noqa: E402

import matplotlib  # noqa: E402
from hypothesis import given, settings  # noqa: E402
from hypothesis import strategies as st  # noqa: E402

from features.lake import Lake  # noqa: E402
from models.fairness import wilson  # noqa: E402
from models.metrics import psi  # noqa: E402
from models.monitoring import (MIN_DEFAULTS, PSI_ACT, PSI_WATCH, SILENT_DAYS, band, drift_text,  # noqa: E402
                               plot_drift, plot_realised, reason_frequencies, sample_rows, silent_sources)
from models.monitoring.lake import _living  # noqa: E402
from models.monitoring.measures import MonitoringInputError, _centre, _share_band, proportion_p_value  # noqa: E402
from models.monitoring.plots import _median_text  # noqa: E402

matplotlib.use("Agg")


class _Stand:
    """A bundle whose decisions are columns of the frame: ``_pd`` (default 0.05), ``_score`` (default
    from the PD) and ``_grade`` (default C)."""

    def __init__(self, features=(), split=None, calibration_band=(0.5, 2.0), groups=(), declarations=None):
        self.features = list(features)
        self.declarations = declarations
        self.meta = {"split": split or {}}
        self.policy = SimpleNamespace(fair_lending={"calibration_band": calibration_band})
        self.reason_plan = SimpleNamespace(groups=list(groups))

    def declared(self):
        """As a bundle keeps them: its own declarations, or today's registry's for a bundle saved without."""
        from features.registry import BY_NAME

        if self.declarations is None:
            return {name: BY_NAME[name].as_json() for name in self.features if name in BY_NAME}
        return {d["name"]: d for d in self.declarations}

    def decide(self, frame, explain=True):
        assert explain is False
        p = frame["_pd"].to_numpy(dtype=float) if "_pd" in frame else np.full(len(frame), 0.05)
        with np.errstate(divide="ignore"):
            score = frame["_score"].to_numpy(dtype=float) if "_score" in frame else 600 - 50 * np.log(p)
        grade = frame["_grade"].to_numpy(dtype=object) if "_grade" in frame else np.full(len(frame), "C", dtype=object)
        return SimpleNamespace(pd=p, score=score, grade=grade)


def _categories(shares: dict[str, float], n: int = 1_000) -> list[str]:
    return [value for value, share in shares.items() for _ in range(round(share * n))]


def _psi_of(before: dict, after: dict) -> float:
    return sum((after[k] - before[k]) * math.log(after[k] / before[k]) for k in before)


def test_the_psi_bands_start_at_their_thresholds():
    assert (band(0.0), band(0.0999), band(PSI_WATCH), band(0.2499), band(PSI_ACT), band(3.0)) == \
        ("stable", "stable", "watch", "watch", "act", "act")
    assert (PSI_WATCH, PSI_ACT) == (0.10, 0.25)


@settings(max_examples=40, deadline=None)
@given(st.floats(0, 5, allow_nan=False), st.floats(0, 5, allow_nan=False))
def test_a_larger_psi_is_never_in_a_milder_band(low, high):
    low, high = sorted((low, high))
    order = {"stable": 0, "watch": 1, "act": 2}
    assert order[band(low)] <= order[band(high)]


def test_the_two_proportion_p_value_is_the_normal_tail_of_the_pooled_z():
    # 60 of 100 against 40 of 100: pooled 0.5, standard error sqrt(0.25 * 0.02), z = 2 * sqrt(2)
    z = 0.2 / math.sqrt(0.25 * 0.02)
    assert proportion_p_value(60, 100, 40, 100) == pytest.approx(math.erfc(z / math.sqrt(2)), rel=1e-9)
    # unequal sizes: 30 of 100 against 10 of 300
    pooled = 40 / 400
    z = (0.3 - 10 / 300) / math.sqrt(pooled * (1 - pooled) * (1 / 100 + 1 / 300))
    assert proportion_p_value(30, 100, 10, 300) == pytest.approx(math.erfc(z / math.sqrt(2)), rel=1e-9)
    assert proportion_p_value(50, 100, 50, 100) == pytest.approx(1.0)


def test_no_rows_on_a_side_has_no_p_value_and_no_variation_is_no_evidence_of_a_move():
    assert math.isnan(proportion_p_value(0, 0, 5, 10)) and math.isnan(proportion_p_value(5, 10, 0, 0))
    assert proportion_p_value(0, 50, 0, 80) == 1.0 and proportion_p_value(50, 50, 80, 80) == 1.0


@settings(max_examples=40, deadline=None)
@given(st.integers(1, 500), st.integers(1, 500), st.data())
def test_the_p_value_is_a_probability_and_does_not_depend_on_which_side_is_before(n, m, data):
    a, b = data.draw(st.integers(0, n)), data.draw(st.integers(0, m))
    p = proportion_p_value(a, n, b, m)
    assert 0 <= p <= 1 and p == pytest.approx(proportion_p_value(b, m, a, n), abs=1e-12)
    assert _share_band(a / n, b / m, p) == _share_band(b / m, a / n, p)


def test_a_sparse_share_moves_band_only_when_beyond_chance_and_by_its_ratio():
    assert _share_band(0.4999, 0.9999, 0.001) == "act"  # ×2 exactly (smoothed by 1e-4)
    assert _share_band(0.9999, 0.4999, 0.001) == "act"  # ÷2 exactly
    assert _share_band(0.3999, 0.4999, 0.001) == "watch"  # ×1.25 exactly
    assert _share_band(0.4999, 0.3999, 0.001) == "watch"
    assert _share_band(0.3999, 0.4998, 0.001) == "stable"  # just under ×1.25
    assert _share_band(0.4999, 0.9998, 0.001) == "watch"  # just under ×2
    assert _share_band(0.01, 0.5, 0.01) == "stable"  # p = SIGNIFICANT is not beyond chance
    assert _share_band(0.01, 0.5, 0.0099) == "act"
    assert _share_band(0.01, 0.5, math.nan) == "stable"  # no rows: no evidence


def _drift_frames(n_before=1_000, n_after=1_000):
    """Before and after with a stable, a watched and an acting category, a sparse feature that trebles,
    and a numeric feature that does not move."""
    generator = np.random.default_rng(11)
    half = {"a": 0.5, "b": 0.5}
    before = pd.DataFrame({
        "stable_cat": _categories(half, n_before), "watch_cat": _categories(half, n_before),
        "act_cat": _categories(half, n_before), "much_cat": _categories(half, n_before),
        "sparse": np.r_[np.zeros(n_before - n_before // 20), np.ones(n_before // 20)],
        "number": generator.normal(size=n_before),
        "_score": np.arange(n_before, dtype=float)})
    after = pd.DataFrame({
        "stable_cat": _categories(half, n_after), "watch_cat": _categories({"a": 0.7, "b": 0.3}, n_after),
        "act_cat": _categories({"a": 0.8, "b": 0.2}, n_after), "much_cat": _categories({"a": 0.9, "b": 0.1}, n_after),
        "sparse": np.r_[np.zeros(n_after - 3 * n_after // 20), np.ones(3 * n_after // 20)],
        "number": generator.normal(size=n_after),
        "_score": np.arange(n_after, dtype=float)})
    return before, after


def test_drift_puts_the_score_first_then_the_features_worst_first_each_on_the_rows_it_rests_on():
    before, after = _drift_frames()
    bundle = _Stand(["stable_cat", "number", "watch_cat", "sparse", "act_cat", "much_cat"])
    table = drift(bundle, before, after)
    # act before watch before stable; within a band the larger move first (a sparse feature's by |log ratio|:
    # ×3 is log 3 = 1.10, above much_cat's PSI of 0.88)
    assert list(table["variable"]) == ["score", "sparse", "much_cat", "act_cat", "watch_cat", "number", "stable_cat"]
    rows = table.set_index("variable")
    assert list(rows["band"]) == ["stable", "act", "act", "act", "watch", "stable", "stable"]
    assert rows.loc["score", "measure"] == "PSI" and rows.loc["score", "value"] == 0
    assert (rows.loc["score", "before"], rows.loc["score", "after"]) == (499.5, 499.5)  # medians
    assert rows.loc["watch_cat", "value"] == pytest.approx(_psi_of({"a": .5, "b": .5}, {"a": .7, "b": .3}))
    assert rows.loc["act_cat", "value"] == pytest.approx(_psi_of({"a": .5, "b": .5}, {"a": .8, "b": .2}))
    assert (rows.loc["act_cat", "before"], rows.loc["act_cat", "after"]) == ("a", "a")  # commonest values
    assert rows.loc["number", "before"] == pytest.approx(before["number"].median())
    assert rows.loc["number", "value"] == pytest.approx(psi(before["number"], after["number"]))
    assert (table["before_rows"] == 1_000).all() and (table["after_rows"] == 1_000).all()
    # the order does not depend on where a feature stands in the model's list
    first = drift(_Stand(["sparse", "stable_cat", "number", "watch_cat", "act_cat", "much_cat"]), before, after)
    assert list(first["variable"]) == list(table["variable"])


def test_a_mostly_zero_feature_is_judged_by_its_non_zero_share():
    before, after = _drift_frames()
    row = drift(_Stand(["sparse"]), before, after).set_index("variable").loc["sparse"]
    assert row["measure"] == "non-zero share" and (row["before"], row["after"]) == (0.05, 0.15)
    assert row["value"] == pytest.approx(0.1501 / 0.0501)
    assert row["p_value"] == pytest.approx(proportion_p_value(50, 1_000, 150, 1_000)) and row["band"] == "act"
    same = drift(_Stand(["sparse"]), before, before).set_index("variable").loc["sparse"]
    assert same["band"] == "stable" and same["value"] == 1.0 and same["p_value"] == pytest.approx(1.0)


def test_a_feature_exactly_at_the_sparse_share_is_sparse_and_missing_counts_as_zero():
    def column(zeros, missing, hits):
        return np.r_[np.zeros(zeros), np.full(missing, np.nan), np.arange(1, hits + 1, dtype=float)]

    frame = pd.DataFrame({"at": column(700, 100, 200), "under": column(799, 0, 201), "_score": np.arange(1_000.0)})
    rows = drift(_Stand(["at", "under"]), frame, frame).set_index("variable")
    assert rows.loc["at", "measure"] == "non-zero share" and rows.loc["at", "before"] == 0.2  # NaN is not a hit
    assert rows.loc["under", "measure"] == "PSI"
    # a sparse feature that can fall below zero (a growth, a gap): a negative value is a hit like a positive one
    negative = frame.assign(at=-frame["at"])
    moved = drift(_Stand(["at"]), frame, negative).set_index("variable").loc["at"]
    assert (moved["before"], moved["after"], moved["band"]) == (0.2, 0.2, "stable")
    back = drift(_Stand(["at"]), negative, frame).set_index("variable").loc["at"]  # on either side
    assert (back["before"], back["after"], back["band"]) == (0.2, 0.2, "stable")
    # a feature mostly below zero is not mostly zero: it is judged by its PSI
    below = pd.DataFrame({"below": np.r_[-np.arange(1.0, 901.0), np.arange(1.0, 101.0)], "_score": np.arange(1_000.0)})
    assert drift(_Stand(["below"]), below, below).set_index("variable").loc["below", "measure"] == "PSI"


def test_a_comparison_on_fewer_than_min_rows_on_either_side_is_shown_but_not_judged():
    before, after = _drift_frames(MIN_ROWS, MIN_ROWS)
    bundle = _Stand(["act_cat", "sparse"])
    judged = drift(bundle, before, after)
    assert "too few rows" not in set(judged["band"]) and judged.set_index("variable").loc["act_cat", "band"] == "act"
    for thin in (drift(bundle, before.head(MIN_ROWS - 1), after), drift(bundle, before, after.head(MIN_ROWS - 1)),
                 drift(bundle, before.head(MIN_ROWS - 1), after.head(MIN_ROWS - 1))):
        assert (thin["band"] == "too few rows").all() and thin["value"].notna().all()


def test_centre_is_the_median_of_a_number_and_the_commonest_category():
    assert _centre(pd.Series([1.0, 2.0, 10.0, np.nan])) == 2.0
    assert math.isnan(_centre(pd.Series([np.nan, np.nan])))
    assert _centre(pd.Series(["x", "y", "y"], dtype="category")) == "y"
    assert _centre(pd.Series(["k", "k", "j"])) == "k"
    assert _centre(pd.Series([], dtype="category")) is None


MISSING_FEATURES = ["tax_sales_3m", "tax_sales_6m", "elec_usage_12m", "water_usage_12m",
                    "sales_electricity_corr_12m", "not_a_registered_feature"]


def _with_missing(shares: dict[str, float], n: int = 400) -> pd.DataFrame:
    return pd.DataFrame({name: np.where(np.arange(n) < round(share * n), np.nan, 1.0) for name, share in shares.items()})


def test_missing_shares_are_reported_per_source_with_the_feature_that_moved_most_largest_move_first():
    bundle = _Stand(MISSING_FEATURES)
    before = _with_missing({"tax_sales_3m": 0.1, "tax_sales_6m": 0.0, "elec_usage_12m": 0.0, "water_usage_12m": 0.75,
                            "sales_electricity_corr_12m": 0.0, "not_a_registered_feature": 0.0})
    after = _with_missing({"tax_sales_3m": 0.1, "tax_sales_6m": 0.5, "elec_usage_12m": 0.25, "water_usage_12m": 0.0,
                           "sales_electricity_corr_12m": 1.0, "not_a_registered_feature": 1.0}, 200)
    table = missing_by_source(bundle, before, after)
    assert list(table["source"]) == ["water", "tax_filings", "electricity"]  # by the size of the move
    rows = table.set_index("source")
    assert rows.loc["tax_filings"].to_dict() == {
        "features": 2, "missing_before": pytest.approx(0.05), "missing_after": pytest.approx(0.3),
        "worst_feature": "tax_sales_6m", "worst_before": 0.0, "worst_after": 0.5, "change": 0.5,
        "before_rows": 400, "after_rows": 200}
    assert rows.loc["water", "change"] == -0.75 and rows.loc["electricity", "change"] == 0.25
    nothing = missing_by_source(bundle, before.head(0), after).set_index("source")
    assert math.isnan(nothing.loc["tax_filings", "missing_before"]) and nothing.loc["tax_filings", "before_rows"] == 0
    assert missing_by_source(_Stand(["not_a_registered_feature"]), before, after).empty
    # the worst is the largest move in points, not in proportion: 25 → 50 % beats 5 → 25 %
    shares = {name: 0.0 for name in MISSING_FEATURES}
    moved = missing_by_source(bundle, _with_missing({**shares, "tax_sales_3m": 0.05, "tax_sales_6m": 0.25}),
                              _with_missing({**shares, "tax_sales_3m": 0.25, "tax_sales_6m": 0.5})).set_index("source")
    assert moved.loc["tax_filings", "worst_feature"] == "tax_sales_6m" and moved.loc["tax_filings", "change"] == 0.25
    # and the move, not the level: half missing on both days moved nothing, 0 → 30 % moved most
    level = missing_by_source(bundle, _with_missing({**shares, "tax_sales_3m": 0.5}),
                              _with_missing({**shares, "tax_sales_3m": 0.5, "tax_sales_6m": 0.3})).set_index("source")
    assert level.loc["tax_filings", "worst_feature"] == "tax_sales_6m"


def test_realised_default_per_grade_is_counted_with_its_interval_all_loans_last():
    loans = pd.DataFrame({"_grade": ["A"] * 100 + ["B"] * 50, "_pd": [0.01] * 100 + [0.1] * 50,
                          "defaulted": [0] * 98 + [1] * 2 + [0] * 40 + [1] * 10})
    table = realised_by_grade(_Stand(), loans).set_index("grade")
    assert list(table.index) == ["A", "B", "C", "D", "E", "all"]
    assert table.loc["A", ["loans", "defaults"]].tolist() == [100, 2]
    assert table.loc["A", "predicted_pd"] == pytest.approx(0.01) and table.loc["A", "realised_rate"] == 0.02
    assert (table.loc["A", "low"], table.loc["A", "high"]) == wilson(2, 100)
    assert table.loc["A", "realised_over_predicted"] == pytest.approx(2.0)
    assert table.loc["B", "realised_over_predicted"] == pytest.approx(2.0)
    half_again = realised_by_grade(_Stand(), pd.DataFrame({"_grade": ["C"] * 100, "_pd": [0.1] * 100,
                                                           "defaulted": [1] * 15 + [0] * 85})).set_index("grade")
    assert half_again.loc["C", "realised_over_predicted"] == pytest.approx(1.5)
    assert table.loc["all", ["loans", "defaults"]].tolist() == [150, 12]
    assert table.loc["all", "predicted_pd"] == pytest.approx(0.04) and table.loc["all", "realised_rate"] == 0.08
    assert table.loc["C", ["loans", "defaults"]].tolist() == [0, 0]
    assert table.loc["C", ["predicted_pd", "realised_rate", "low", "high", "realised_over_predicted"]].isna().all()
    free = realised_by_grade(_Stand(), loans.assign(_pd=0.0)).set_index("grade")
    assert math.isnan(free.loc["all", "realised_over_predicted"])  # nothing predicted: no ratio


def _applicants(score=("stable", 0.01), features=(("f", "stable", 0.01),)):
    rows = [{"variable": "score", "measure": "PSI", "value": score[1], "band": score[0], "before_rows": 5_000,
             "after_rows": 800}]
    rows += [{"variable": name, "measure": "PSI", "value": value, "band": b, "before_rows": 5_000, "after_rows": 800}
             for name, b, value in features]
    return pd.DataFrame(rows)


def _missing(change=0.0, before_rows=1_000, after_rows=1_000, before=0.1):
    return pd.DataFrame([{"source": "electricity", "worst_feature": "elec_usage_12m", "worst_before": before,
                          "worst_after": before + change, "change": change, "before_rows": before_rows,
                          "after_rows": after_rows}])


def _realised(grade="all", defaults=40, loans=400, low=0.05, high=0.15, predicted=0.1):
    return pd.DataFrame([{"grade": grade, "loans": loans, "defaults": defaults, "predicted_pd": predicted,
                          "realised_rate": defaults / loans, "low": low, "high": high}])


def _silent(silent=False):
    return pd.DataFrame([{"source": "electricity", "last_delivery": "2025-09-30", "longest_gap_days": 31.0,
                          "silent_days": 273, "silent": silent}])


def _say(applicants=None, population=None, missing=None, realised=None, silent=None, calibration=(0.5, 2.0)):
    return verdict(_applicants() if applicants is None else applicants,
                   _applicants() if population is None else population,
                   _missing() if missing is None else missing, _realised() if realised is None else realised,
                   calibration, silent)


STABLE = ("stable", ["no rule fired: score, sources, features and realised default all within their bands"])


def test_nothing_beyond_its_band_is_stable():
    assert _say() == STABLE
    assert _say(silent=_silent(False)) == STABLE
    assert _say(population=pd.DataFrame()) == STABLE


def test_the_applicants_score_psi_decides_retrain_in_the_act_band_and_watch_in_the_watch_band():
    said, rules = _say(applicants=_applicants(score=("act", 0.3125)))
    assert said == "retrain" and rules == \
        ["applicants' score PSI 0.312 ≥ 0.25 (5,000 training borrowers → 800 recent applicants)"]
    assert _say(applicants=_applicants(score=("watch", 0.125))) == ("watch", ["applicants' score PSI 0.125 ≥ 0.1"])
    assert _say(applicants=_applicants(score=("too few rows", 0.5))) == STABLE


def test_a_silent_source_means_retrain_and_is_named():
    said, rules = _say(silent=_silent(True))
    assert said == "retrain" and rules == [
        "electricity: no delivery since 2025-09-30 (273 days; its longest gap in the two years before was 31 days) "
        "— the department stopped delivering"]


def test_a_missing_share_moved_20_points_means_retrain_10_points_watch_and_only_beyond_chance():
    said, rules = _say(missing=_missing(0.25))
    assert said == "retrain" and rules == ["electricity: elec_usage_12m missing among applicants 10% → 35% (+25 points)"
                                           " — the department's deliveries changed"]
    assert _say(missing=_missing(0.125)) == ("watch", ["electricity: elec_usage_12m missing among applicants "
                                                      "10% → 22% (+12 points)"])
    assert _say(missing=_missing(-0.125, before=0.5))[0] == "watch"  # a source that started delivering
    assert _say(missing=_missing(-0.25, before=0.5))[0] == "retrain"
    assert _say(missing=_missing(0.0625)) == STABLE
    # exactly at the thresholds: a move of 20 points is the department's, of 10 points is watched
    assert _say(missing=_missing(0.2, before=0.25))[0] == "retrain"
    assert _say(missing=_missing(-0.2, before=0.25))[0] == "retrain"
    assert _say(missing=_missing(0.1, before=0.25))[0] == "watch"
    assert _say(missing=_missing(-0.1, before=0.25))[0] == "watch"
    assert _say(missing=_missing(0.0999, before=0.25)) == STABLE
    # on too few rows, or within chance, a move is not counted
    assert _say(missing=_missing(0.25, MIN_ROWS - 1, 1_000)) == STABLE
    assert _say(missing=_missing(0.25, 1_000, MIN_ROWS - 1)) == STABLE
    assert _say(missing=_missing(0.1, MIN_ROWS, MIN_ROWS, before=0.1))[0] == "watch"  # 20 → 40 of 200: p 0.005
    assert _say(missing=_missing(0.1, MIN_ROWS, MIN_ROWS, before=0.4)) == STABLE  # 80 → 100 of 200: p 0.04


def test_features_in_the_act_band_and_a_moved_population_are_watched_not_retrained():
    acting = _applicants(features=[(f"f{i}", "act", 0.5) for i in range(7)] + [("g", "watch", 0.2)])
    said, rules = _say(applicants=acting)
    assert said == "watch" and rules == ["7 model features drift beyond the act band among applicants: "
                                         "f0, f1, f2, f3, f4"]
    assert _say(population=_applicants(score=("act", 0.5))) == \
        ("watch", ["the whole population's score PSI 0.500 ≥ 0.25 (a year apart)"])
    assert _say(population=_applicants(score=("watch", 0.2))) == STABLE
    assert _say(population=_applicants(score=("stable", 0.01), features=[("f", "act", 0.9)])) == STABLE


def test_realised_default_outside_the_band_means_retrain_for_all_loans_and_watch_for_one_grade():
    # predicted 10 %, band ×0.5…×2: the realised interval must lie wholly outside 5 %…20 %
    said, rules = _say(realised=_realised(defaults=100, loans=400, low=0.21, high=0.29))
    assert said == "retrain" and rules == ["all matured loans since training: realised default 25.00% "
                                           "(21.00%…29.00%, 100 of 400 loans) against predicted 10.00%"]
    assert _say(realised=_realised(low=0.01, high=0.04))[0] == "retrain"  # over-predicted as well
    assert _say(realised=_realised(low=0.19, high=0.29)) == STABLE  # the interval reaches into the band
    said, rules = _say(realised=_realised(grade="D", low=0.21, high=0.29))
    assert said == "watch" and rules[0].startswith("grade D: realised default")
    # judged on 10 defaults or more, as the verdict's rules say: 9 are too few
    assert _say(realised=_realised(defaults=9, loans=36, low=0.21, high=0.29)) == STABLE
    assert _say(realised=_realised(defaults=10, loans=40, low=0.21, high=0.29))[0] == "retrain"
    assert _say(realised=_realised(low=0.21, high=0.29), calibration=(0.5, 3.0)) == STABLE  # the policy's band


def test_each_missing_share_and_each_grade_is_judged_on_its_own():
    missing = pd.concat([_missing(0.25, MIN_ROWS - 1, 1_000), _missing(0.0625), _missing(0.25)], ignore_index=True)
    assert _say(missing=missing)[0] == "retrain"  # the third row, after a thin one and a small one
    realised = pd.concat([_realised("A", defaults=MIN_DEFAULTS - 1, low=0.21, high=0.29),
                          _realised("B", low=0.06, high=0.19), _realised("C", low=0.21, high=0.29),
                          _realised("all", low=0.21, high=0.29)], ignore_index=True)
    said, rules = _say(realised=realised)
    assert said == "retrain" and [rule.split(":")[0] for rule in rules] == ["all matured loans since training",
                                                                           "grade C"]


def test_every_rule_that_fired_is_named_retrain_rules_before_watch_rules():
    said, rules = _say(applicants=_applicants(features=[("f", "act", 0.5)]), silent=_silent(True),
                       missing=_missing(0.125), realised=_realised(grade="B", low=0.21, high=0.29))
    assert said == "retrain"
    assert [rule.split(" ")[0] for rule in rules] == ["electricity:", "electricity:", "1", "grade"]
    assert rules[0].endswith("stopped delivering") and "missing among applicants" in rules[1]
    said, rules = _say(applicants=_applicants(score=("watch", 0.125), features=[("f", "act", 0.5)]),
                       population=_applicants(score=("act", 0.5)))
    assert said == "watch" and len(rules) == 3 and rules[0].startswith("applicants' score PSI")


# ---------------------------------------------------------------- silence, as of a day

def _deliveries(home, source: str, days: list[str]) -> None:
    """A source whose records the platform learned of on ``days``."""
    from features.schemas import SOURCES

    Lake(home).commit_rows(source, pd.DataFrame({SOURCES[source].known_date: pd.to_datetime(days)}),
                           {"run_id": f"test-{source}", "started": "2026-01-01T00:00:00"})


def _monthly(first: str, last: str) -> list[str]:
    return [str(d.date()) for d in pd.date_range(first, last, freq="ME")]


def test_a_source_silent_for_over_two_months_and_longer_than_its_longest_gap_has_gone_silent(tmp_path):
    _deliveries(tmp_path, "electricity", _monthly("2024-07-01", "2026-03-31") + ["2026-07-31"])  # July is after as-of
    _deliveries(tmp_path, "tax_grades", ["2023-09-30", "2024-09-30", "2025-09-30"])  # annual
    _deliveries(tmp_path, "water", ["2026-04-29"])  # one delivery, 62 days before
    _deliveries(tmp_path, "gas", ["2026-04-28"])  # one delivery, 63 days before
    _deliveries(tmp_path, "court_executions", ["2026-07-01"])  # nothing known by the day
    table = silent_sources(tmp_path, dt.date(2026, 6, 30), ["not_a_source", "real_estate", "court_executions",
                                                            "electricity", "tax_grades", "water", "gas"])
    rows = table.set_index("source")
    assert list(rows.index) == ["electricity", "tax_grades", "water", "gas"]  # nothing delivered, nothing known
    assert rows.loc["electricity"].to_dict() == {"last_delivery": "2026-03-31", "longest_gap_days": 31.0,
                                                 "silent_days": 91, "silent": True}
    assert rows.loc["tax_grades", "longest_gap_days"] == 365 and not rows.loc["tax_grades", "silent"]
    assert rows.loc["water", "silent_days"] == SILENT_DAYS and not rows.loc["water", "silent"]
    assert math.isnan(rows.loc["gas", "longest_gap_days"]) and rows.loc["gas", "silent"]


def test_silence_is_judged_against_the_longest_gap_of_the_two_years_before_the_last_delivery(tmp_path):
    # a 200-day gap that ended more than two years before the last delivery excuses nothing now
    _deliveries(tmp_path, "electricity", ["2023-06-01", "2023-12-18", *_monthly("2024-01-01", "2026-02-28")])
    # the same gap inside the two years excuses a silence of up to 1.5 times it
    _deliveries(tmp_path, "water", ["2025-01-01", "2025-05-01", "2025-06-01", "2025-07-01"])  # longest 120 days
    _deliveries(tmp_path, "gas", ["2025-01-01", "2025-05-01", "2025-06-01", "2025-06-30"])
    rows = silent_sources(tmp_path, dt.date(2025, 10, 29), ["electricity", "water", "gas"]).set_index("source")
    assert rows.loc["water", "longest_gap_days"] == 120 and rows.loc["water", "silent_days"] == 120
    assert not rows.loc["water", "silent"]  # 120 days of silence: within 1.5 × 120
    assert rows.loc["gas", "silent_days"] == 121 and not rows.loc["gas", "silent"]
    later = silent_sources(tmp_path, dt.date(2026, 5, 31), ["electricity"]).set_index("source")
    assert later.loc["electricity", "longest_gap_days"] == 31 and later.loc["electricity", "silent"]
    edge = silent_sources(tmp_path, dt.date(2025, 12, 27), ["water", "gas"]).set_index("source")
    assert edge.loc["gas", "silent_days"] == 180 and not edge.loc["gas", "silent"]  # exactly 1.5 × 120
    assert edge.loc["water", "silent_days"] == 179 and not edge.loc["water", "silent"]
    past = silent_sources(tmp_path, dt.date(2025, 12, 28), ["water", "gas"]).set_index("source")
    assert past.loc["gas", "silent_days"] == 181 and past.loc["gas", "silent"]  # beyond 1.5 × 120
    assert past.loc["water", "silent_days"] == 180 and not past.loc["water", "silent"]



def test_a_delivery_on_the_day_itself_counts_and_a_short_silence_is_never_silent(tmp_path):
    """As of a day, what arrived that day is known (a source delivering on its day is not silent);
    and a silence of two months or less is not silence, however regular the source was before."""
    _deliveries(tmp_path, "electricity", _monthly("2025-01-01", "2026-03-31") + ["2026-06-30"])
    _deliveries(tmp_path, "water", [str(d.date()) for d in pd.date_range("2026-01-01", "2026-06-10", freq="10D")])
    rows = silent_sources(tmp_path, dt.date(2026, 6, 30), ["electricity", "water"]).set_index("source")
    assert rows.loc["electricity", "last_delivery"] == "2026-06-30" and rows.loc["electricity", "silent_days"] == 0
    assert not rows.loc["electricity", "silent"]
    assert rows.loc["water", "longest_gap_days"] == 10 and rows.loc["water", "silent_days"] == 20
    assert not rows.loc["water", "silent"]  # 20 days: more than 1.5 × its gaps, but not two months


# ---------------------------------------------------------------- monitor, as of a day, on a hand-built lake

def _snapshot(loan_no: str, granted: str, pd_: float = 0.05, grade: str = "C", usage: float = 1.0) -> dict:
    return {"loan_no": loan_no, "uscc": f"U{loan_no}", "grant_date": pd.Timestamp(granted), "_pd": pd_,
            "_grade": grade, "elec_usage_12m": usage}


def test_monitor_sees_applicants_population_and_outcomes_only_as_known_on_its_day(tmp_path, monkeypatch):
    """Promise: as of a day, recent applicants are the loans granted in the months to that day and not
    after it (a loan granted later that month is not there); realised default counts the loans granted
    after the champion's fitted windows that had matured by then, with the outcomes the banks had
    reported by then; the population is compared with itself a year before."""
    as_of = dt.date(2026, 4, 15)
    split = {"train": ["2024-01", "2024-06"], "valid": ["2024-07", "2024-08"], "calib": ["", ""]}
    rows = [_snapshot(f"T{i}", f"2024-0{1 + i % 6}-10") for i in range(12)]  # training borrowers
    rows += [_snapshot("F1", "2024-08-20")]  # inside the fitted windows: not "since training"
    rows += [_snapshot(f"S{i}", f"2024-{9 + i % 4:02d}-05", 0.1, "D") for i in range(8)]  # matured since
    rows += [_snapshot("L1", "2025-04-01", 0.1, "D")]  # granted 12.5 months before: matured by the reports
    rows += [_snapshot("R0", "2025-10-31"), _snapshot("R1", "2025-11-01"), _snapshot("R2", "2026-02-14"),
             _snapshot("R3", "2026-04-15"), _snapshot("X1", "2026-04-16", usage=np.nan), _snapshot("X2", "2026-05-03")]
    snapshots = pd.DataFrame(rows)
    reports = [(f"S{i}", "2025-12-31", "Y" if i < 3 else "N") for i in range(8)]
    reports += [("F1", "2025-12-31", "Y"), ("L1", "2026-04-10", "N"), ("T0", "2025-06-30", "N")]
    reports += [("S3", "2026-04-20", "Y"), ("S4", "2026-05-31", "Y")]  # defaults reported after the day
    Lake(tmp_path).commit_rows("loan_outcomes", pd.DataFrame(
        [{"loan_no": n, "reported_date": pd.Timestamp(d), "default_12m": o} for n, d, o in reports]),
        {"run_id": "banks", "started": "2026-05-31T00:00:00"})
    _deliveries(tmp_path, "electricity", _monthly("2024-01-01", "2026-03-31") + ["2026-04-30"])
    living = {as_of: pd.DataFrame({"elec_usage_12m": [1.0] * 3, "_score": [600.0, 610.0, 620.0]}),
              dt.date(2025, 4, 15): pd.DataFrame({"elec_usage_12m": [1.0] * 4, "_score": [500.0, 510.0, 520.0, 530.0]})}
    asked = []
    monkeypatch.setattr("models.monitoring.lake._living", lambda home, day: asked.append(day) or living.get(day, pd.DataFrame()))
    bundle = _Stand(["elec_usage_12m"], split=split, calibration_band=(0.5, 2.0))

    found = monitor(bundle, tmp_path, as_of, snapshots=snapshots)  # the six months to the day, by default
    assert asked == [as_of, dt.date(2025, 4, 15)]
    score = found.applicants.iloc[0]
    assert (score["variable"], score["before_rows"], score["after_rows"]) == ("score", 12, 3)  # R1, R2, R3
    assert found.populations == {
        "training applicants": "12 loans granted 2024-01…2024-06 (profiles at grant)",
        "recent applicants": "3 loans granted 2025-11…2026-04 (profiles at grant)",
        "population then": "4 living entities on 2025-04-15",
        "population now": "3 living entities on 2026-04-15",
        "matured since training": "9 loans granted after 2024-08, 3 defaults"}
    everything = found.realised.set_index("grade").loc["all"]
    assert (everything["loans"], everything["defaults"]) == (9, 3)
    assert (found.population.iloc[0]["before_rows"], found.population.iloc[0]["after_rows"]) == (4, 3)
    assert found.population.iloc[0]["before"] == 515.0 and found.population.iloc[0]["after"] == 610.0
    pd.testing.assert_frame_equal(found.population_now, living[as_of])
    assert found.silent.set_index("source").loc["electricity", "last_delivery"] == "2026-03-31"
    assert not found.silent["silent"].any()
    assert found.missing.set_index("source").loc["electricity", "after_rows"] == 3
    assert found.missing.set_index("source").loc["electricity", "worst_after"] == 0  # X1, after the day, is not there
    # 3 of 9 against a predicted 10 %: ×3.3 but on 3 defaults, fewer than MIN_DEFAULTS: not judged
    assert found.verdict == "stable", found.rules

    later = monitor(bundle, tmp_path, dt.date(2026, 6, 30), recent_months=3, snapshots=snapshots)
    assert later.applicants.iloc[0]["after_rows"] == 3  # R3, X1, X2: April to June
    assert later.realised.set_index("grade").loc["all", "defaults"] == 5
    assert later.populations["population then"] == "0 living entities on 2025-06-30"
    assert later.population.empty  # nothing to compare with a year before
    del living[dt.date(2025, 4, 15)]  # the lake does not reach a year before: one side only, not compared
    assert monitor(bundle, tmp_path, as_of, snapshots=snapshots).population.empty

    early = monitor(bundle, tmp_path, dt.date(2025, 6, 30), snapshots=snapshots)
    assert early.populations["recent applicants"] == "1 loans granted 2025-04…2025-04 (profiles at grant)"
    assert early.populations["matured since training"] == "0 loans granted after 2024-08, 0 defaults"
    with warnings.catch_warnings():  # no recent applicant: the median of nothing
        warnings.simplefilter("ignore", RuntimeWarning)
        none = monitor(bundle, tmp_path, dt.date(2024, 7, 31), recent_months=1, snapshots=snapshots)
    assert none.populations["recent applicants"] == "0 loans granted none (profiles at grant)"


def test_drift_by_district_names_each_district_with_its_rows_and_judges_only_thick_ones():
    before = pd.DataFrame({"district_code": ["420502"] * 300 + ["420503"] * 50,
                           "_pd": [0.02] * 300 + [0.04] * 50, "_score": np.r_[np.arange(300.0), np.arange(50.0)]})
    after = pd.DataFrame({"district_code": ["420502"] * 250 + ["420503"] * 250 + ["420504"] * 10,
                          "_pd": [0.03] * 250 + [0.05] * 250 + [0.1] * 10,
                          "_score": np.r_[np.arange(250.0) + 1_000, np.arange(250.0), np.arange(10.0)]})
    table = drift_by(_Stand(), before, after, "district_code")
    assert list(table["district_code"]) == ["西陵区 Xiling (420502)", "伍家岗区 Wujiagang (420503)",
                                            "点军区 Dianjun (420504)"]
    rows = table.set_index("district_code")
    xiling = rows.loc["西陵区 Xiling (420502)"]
    assert (xiling["before_rows"], xiling["after_rows"]) == (300, 250)
    assert xiling["mean_pd_before"] == pytest.approx(0.02) and xiling["mean_pd_after"] == pytest.approx(0.03)
    assert xiling["score_psi"] == pytest.approx(psi(np.arange(300.0), np.arange(250.0) + 1_000))
    assert xiling["band"] == "act"
    assert rows.loc["伍家岗区 Wujiagang (420503)", "band"] == "too few rows"  # 50 before
    new = rows.loc["点军区 Dianjun (420504)"]
    assert new["before_rows"] == 0 and math.isnan(new["score_psi"]) and math.isnan(new["mean_pd_before"])
    assert new["mean_pd_after"] == pytest.approx(0.1) and new["band"] == "too few rows"
    thick = drift_by(_Stand(), before.head(MIN_ROWS), after.head(MIN_ROWS), "district_code")
    assert thick.iloc[0]["band"] == "act"
    assert drift_by(_Stand(), before.head(MIN_ROWS - 1), after.head(MIN_ROWS), "district_code").iloc[0]["band"] == \
        "too few rows"


def test_reason_frequencies_count_each_code_among_the_listed_decisions_with_its_words():
    listing = pd.DataFrame({"adverse_reasons": ["TX01;UT01", "TX01", "", None, "NA07;TX01", "ZZ99"]})
    groups = [{"code": "NA07", "feature": None, "source": "electricity", "zh": "无用电记录", "en": "no electricity record"}]
    table = reason_frequencies(listing, _Stand(["tax_sales_3m", "elec_usage_12m"], groups=groups))
    assert table["code"].iloc[0] == "TX01" and list(table["decisions"]) == [3, 1, 1, 1]  # commonest first
    rows = table.set_index("code")
    assert rows.loc["TX01", "decisions"] == 3 and rows.loc["TX01", "share"] == 0.5
    assert rows.loc["TX01", "feature or source"] == "tax_sales_3m" and rows.loc["TX01", "zh"] != "TX01"
    assert rows.loc["NA07", ["feature or source", "zh", "en"]].tolist() == ["electricity", "无用电记录",
                                                                            "no electricity record"]
    assert rows.loc["ZZ99", ["feature or source", "zh", "en"]].tolist() == ["ZZ99"] * 3
    assert set(table["code"]) == {"TX01", "UT01", "NA07", "ZZ99"}  # no empty code
    assert list(reason_frequencies(listing, _Stand(["tax_sales_3m"], groups=groups), top=1)["code"]) == ["TX01"]
    # a code means what it meant when the bundle was saved, whatever today's registry says
    then = [{"name": "tax_sales_3m_old", "code": "TX01", "zh": "旧说法", "en": "the words of then"}]
    kept = reason_frequencies(listing, _Stand(["tax_sales_3m"], declarations=then)).set_index("code")
    assert kept.loc["TX01", ["feature or source", "zh", "en"]].tolist() == ["tax_sales_3m_old", "旧说法",
                                                                            "the words of then"]
    many = pd.DataFrame({"adverse_reasons": [";".join(f"C{i:02d}" for i in range(16))]})
    shown = reason_frequencies(many, _Stand())
    assert len(shown) == 15 and (shown["share"] == 1.0).all()  # the 15 commonest by default; one decision each
    assert reason_frequencies(listing.head(0), _Stand()).empty


def test_a_drift_table_reads_in_units_shares_and_counts():
    table = pd.DataFrame([
        {"variable": "score", "measure": "PSI", "before": 612.5, "after": 598.0, "value": 0.1234, "band": "watch",
         "before_rows": 5_000, "after_rows": 800},
        {"variable": "penalty_count_12m", "measure": "non-zero share", "before": 0.05, "after": 0.15, "value": 2.996,
         "p_value": 0.0004, "band": "act", "before_rows": 5_000, "after_rows": 800},
        {"variable": "tax_sales_3m", "measure": "PSI", "before": 1234.5, "after": float("nan"), "value": 0.5,
         "band": "act", "before_rows": 5_000, "after_rows": 800},
        {"variable": "industry_section", "measure": "PSI", "before": "C", "after": None, "value": 0.0,
         "band": "stable", "before_rows": 5_000, "after_rows": 800},
        {"variable": "not_a_registered_feature", "measure": "PSI", "before": 0.5, "after": 1234.0, "value": 0.0,
         "band": "stable", "before_rows": 5_000, "after_rows": 800}])
    text = drift_text(table).set_index("variable")
    assert text.loc["not_a_registered_feature"].tolist()[:2] == ["0.5", "1,234"]  # no unit to name
    assert text.loc["score"].tolist() == ["612.5 points", "598 points", "PSI 0.123", "watch", "5,000 → 800"]
    assert text.loc["penalty_count_12m"].tolist()[:3] == ["5.0% non-zero", "15.0% non-zero", "×3.00 (p 0.000)"]
    assert text.loc["tax_sales_3m"].tolist()[:2] == ["¥1,234", "— (mostly missing)"]
    assert text.loc["industry_section"].tolist()[:2] == ["C", "— (mostly missing)"]


def test_a_median_reads_in_its_registry_unit():
    assert _median_text(1234.5, "yuan") == "¥1,234"
    assert _median_text(0.125, "share") == "12.5%"
    assert (_median_text(0.5, "flag"), _median_text(0.49, "flag")) == ("yes", "no")
    assert _median_text(1000.0, "kWh") == "1,000 kWh" and _median_text(999.5, "kWh") == "999.5 kWh"
    assert _median_text(-2500.0, "m3") == "-2,500 m3" and _median_text(0.123456, "") == "0.1235"
    assert (_median_text(None, "yuan"), _median_text("C", "category")) == ("—", "C")
    assert _median_text(float("nan"), "yuan") == "— (mostly missing)"


def test_a_sample_is_at_most_n_rows_the_same_ones_every_time():
    frame = pd.DataFrame({"x": np.arange(50)})
    assert sample_rows(frame, 50) is frame and sample_rows(frame, 60) is frame
    drawn = sample_rows(frame, 10)
    assert len(drawn) == 10 and drawn["x"].is_unique and drawn.equals(sample_rows(frame, 10))
    assert not drawn.equals(sample_rows(frame, 10, seed=1))
    assert drawn.equals(frame.sample(10, random_state=0))  # the draw every published figure was made with


def test_the_drift_plot_shows_the_worst_psi_features_by_band_and_the_sparse_shares_before_beside_after():
    import matplotlib.pyplot as plt
    from matplotlib.colors import to_hex

    rows = [{"variable": "score", "measure": "PSI", "value": 0.3, "band": "act", "before": 1.0, "after": 1.0,
             "before_rows": 5_000, "after_rows": 800}]
    rows += [{"variable": f"f{i}", "measure": "PSI", "value": 0.3 - 0.05 * i, "band": band(0.3 - 0.05 * i),
              "before": 1.0, "after": 1.0, "before_rows": 5_000, "after_rows": 800} for i in range(6)]
    rows += [{"variable": f"s{i}", "measure": "non-zero share", "value": 2.0, "band": "act" if i == 0 else "stable",
              "before": 0.1, "after": 0.2 - 0.01 * i, "before_rows": 5_000, "after_rows": 800} for i in range(4)]
    figure = plot_drift(pd.DataFrame(rows), "applicants", top=4)
    left, right = figure.axes[:2]
    bars = left.patches
    # the score and the first three features (top = 4), the first row at the top
    assert [b.get_width() for b in bars] == pytest.approx([0.2, 0.25, 0.3, 0.3])
    assert [t.get_text() for t in left.get_yticklabels()] == ["f2", "f1", "f0", "score"]
    assert [to_hex(b.get_facecolor()) for b in bars] == ["#d4ac0d", "#c0392b", "#c0392b", "#c0392b"]
    assert sorted(line.get_xdata()[0] for line in left.lines) == [PSI_WATCH, PSI_ACT]
    assert "5,000 → 800 rows" in left.get_title() and left.get_title().startswith("applicants: PSI")
    widths = [b.get_width() for b in right.patches]
    assert widths == pytest.approx([0.1, 0.1, 0.19, 0.2])  # two sparse features (top // 2), before then after
    assert [t.get_text() for t in right.get_yticklabels()] == ["s1", "s0"]
    assert to_hex(right.patches[3].get_facecolor()) == "#c0392b"
    assert [b.get_y() + b.get_height() / 2 for b in right.patches] == pytest.approx([-0.2, 0.8, 0.2, 1.2])
    assert [b.get_height() for b in right.patches] == pytest.approx([0.4] * 4)
    assert right.xaxis.get_major_formatter()(0.125, 0) == "12.5%"
    assert tuple(figure.get_size_inches()) == (15, 4)  # 0.35 inch a feature shown, at least 4
    assert tuple(plot_drift(pd.DataFrame(rows), "applicants", top=20).get_size_inches()) == (15, 7)
    assert len(plot_drift(pd.DataFrame(rows), "applicants", top=1).axes[1].patches) == 2  # one sparse feature
    assert left.get_position().width / right.get_position().width == pytest.approx(1.5, rel=0.05)
    plt.close(figure)


def test_the_realised_plot_puts_each_grade_predicted_beside_realised_with_its_interval():
    import matplotlib.pyplot as plt

    table = pd.DataFrame({"grade": ["A", "all"], "loans": [1_000, 1_200], "defaults": [1, 12],
                          "predicted_pd": [0.01, 0.02], "realised_rate": [0.001, 0.01], "low": [0.0, 0.005],
                          "high": [0.006, 0.02]})
    figure = plot_realised(table)
    ax = figure.axes[0]
    heights = [b.get_height() for b in ax.patches]
    assert heights == pytest.approx([0.01, 0.02, 0.001, 0.01])
    assert [t.get_text() for t in ax.get_xticklabels()] == ["A\n1,000 loans\n1 default", "all\n1,200 loans\n12 defaults"]
    centres = [b.get_x() + b.get_width() / 2 for b in ax.patches]
    assert centres == pytest.approx([-0.2, 0.8, 0.2, 1.2])  # predicted to the left of realised, per grade
    assert [b.get_width() for b in ax.patches] == pytest.approx([0.4] * 4)
    bars = next(c for c in ax.containers if getattr(c, "errorbar", None) is not None)
    whiskers = bars.errorbar.lines[2][0].get_segments()
    assert [(s[0][1], s[1][1]) for s in whiskers] == [pytest.approx((0.0, 0.006)), pytest.approx((0.005, 0.02))]
    plt.close(figure)


def _sparse(share: float, n: int = 1_000) -> np.ndarray:
    return (np.arange(n) < round(share * n)).astype(float)


def test_worst_first_is_by_band_then_by_the_size_of_the_move_whichever_way_a_share_moved():
    before, after = _drift_frames()
    before = before.assign(sparse_fall=_sparse(0.2), sparse_watch=_sparse(0.05), sparse_rare=_sparse(0.005))
    after = after.assign(sparse_fall=_sparse(0.05), sparse_watch=_sparse(0.09), sparse_rare=_sparse(0.015))
    bundle = _Stand(["stable_cat", "sparse_rare", "watch_cat", "sparse_watch", "act_cat", "much_cat", "sparse",
                     "sparse_fall"])
    table = drift(bundle, before, after)
    # act: ÷4 (|log| 1.39), ×3 (1.10), PSI 0.88, PSI 0.42; watch: ×1.8 (0.59), PSI 0.17; stable: ×3 on 5 → 15
    # rows (not beyond chance: |log| 1.08), PSI 0
    assert list(table["variable"]) == ["score", "sparse_fall", "sparse", "much_cat", "act_cat", "sparse_watch",
                                       "watch_cat", "sparse_rare", "stable_cat"]
    assert list(table["band"]) == ["stable", "act", "act", "act", "act", "watch", "watch", "stable", "stable"]


def test_a_side_of_one_row_or_none_still_has_its_share_shown():
    before = pd.DataFrame({"sparse": _sparse(0.05, 300), "_score": np.arange(300.0)})
    one = drift(_Stand(["sparse"]), before, pd.DataFrame({"sparse": [2.0], "_score": [1.0]})).set_index("variable")
    assert one.loc["sparse", "after"] == 1.0 and one.loc["sparse", "after_rows"] == 1
    assert one.loc["sparse", "band"] == "too few rows"
    with np.errstate(all="ignore"), warnings.catch_warnings():
        warnings.simplefilter("ignore", RuntimeWarning)
        none = drift(_Stand(["sparse"]), before, before.head(0)).set_index("variable")
    assert none.loc["sparse", "after"] == 0.0 and none.loc["sparse", "after_rows"] == 0
    assert (none["band"] == "too few rows").all()


def test_a_measure_refuses_a_frame_it_cannot_measure_and_says_what_it_lacks():
    """The measures take frames from a notebook as readily as from the lake: a frame without the
    model's features, without the column asked for, or with loans not yet matured is refused in the
    domain's words (the measure, the side, the columns), never measured wrongly or with a KeyError."""
    bundle = _Stand(["elec_usage_12m", "tax_sales_12m"])
    whole = pd.DataFrame({"elec_usage_12m": [1.0] * 5, "tax_sales_12m": [2.0] * 5, "district": ["420502"] * 5,
                          "defaulted": [0, 1, 0, 0, 1]})
    lacking = whole.drop(columns=["tax_sales_12m"])
    with pytest.raises(MonitoringInputError, match=r"^drift: the population after lacks 1 of the columns it is "
                                                   r"measured on: tax_sales_12m$"):
        drift(bundle, whole, lacking)
    with pytest.raises(MonitoringInputError, match="missing shares by source: the population before lacks 1"):
        missing_by_source(bundle, lacking, whole)
    with pytest.raises(MonitoringInputError, match="drift by industry: the population before lacks 1 .*: industry"):
        drift_by(bundle, whole, whole, "industry")
    with pytest.raises(MonitoringInputError, match="must be a table of profiles \\(a DataFrame\\), not list"):
        drift(bundle, whole, [1, 2])
    with pytest.raises(MonitoringInputError, match="reason frequencies: the list of decisions lacks 1 .*adverse_reasons"):
        reason_frequencies(whole, bundle)
    immature = whole.assign(defaulted=[0, 1, None, 0, 1])
    with pytest.raises(MonitoringInputError, match="realised default by grade: 1 of 5 loans have no outcome of 0 or 1"):
        realised_by_grade(bundle, immature)
    assert realised_by_grade(bundle, whole).set_index("grade").loc["all", "defaults"] == 2
    wide = [f"f{i}" for i in range(12)]
    with pytest.raises(MonitoringInputError, match="lacks 12 of the columns it is measured on: f0, f1, f2, f3, f4 and 7 more"):
        drift(_Stand(wide), whole, whole)
    # five are named in full; from six, the rest are counted
    with pytest.raises(MonitoringInputError, match=r"lacks 5 of the columns it is measured on: f0, f1, f2, f3, f4$"):
        drift(_Stand(wide[:5]), whole, whole)
    with pytest.raises(MonitoringInputError, match=r"lacks 6 of the columns it is measured on: f0, f1, f2, f3, f4 and 1 more$"):
        drift(_Stand(wide[:6]), whole, whole)


def test_a_mostly_missing_category_is_judged_by_psi_with_missing_as_its_own_bin():
    before = pd.DataFrame({"category": [None] * 900 + ["a"] * 100, "_score": np.arange(1_000.0)})
    after = pd.DataFrame({"category": [None] * 500 + ["a"] * 500, "_score": np.arange(1_000.0)})
    row = drift(_Stand(["category"]), before, after).set_index("variable").loc["category"]
    assert row["measure"] == "PSI" and row["value"] == pytest.approx(_psi_of({"∅": .9, "a": .1}, {"∅": .5, "a": .5}))


def test_the_longest_gap_counts_deliveries_strictly_within_two_years_of_the_last(tmp_path):
    # the last delivery 2026-03-31; 730 days before it is 2024-03-31, 729 days before it 2024-04-01
    _deliveries(tmp_path, "electricity", ["2024-03-31", "2024-09-07", *_monthly("2024-09-01", "2026-03-31")])
    _deliveries(tmp_path, "water", ["2024-04-01", "2024-08-29", *_monthly("2024-09-01", "2026-03-31")])
    rows = silent_sources(tmp_path, dt.date(2026, 4, 30), ["electricity", "water"]).set_index("source")
    assert rows.loc["electricity", "longest_gap_days"] == 31  # the 160-day gap from exactly two years before is out
    assert rows.loc["water", "longest_gap_days"] == 150  # the 150-day gap from a day inside the two years is in


@settings(max_examples=15, deadline=None)
@given(st.integers(0, 2**32 - 1), st.integers(MIN_ROWS, 600), st.floats(0.0, 0.5))
def test_a_population_compared_with_itself_has_not_moved(seed, rows, zero_share):
    generator = np.random.default_rng(seed)
    frame = pd.DataFrame({"number": np.where(generator.random(rows) < zero_share, 0.0, generator.normal(size=rows)),
                          "sparse": (generator.random(rows) < 0.05).astype(float),
                          "category": generator.choice(["a", "b", "c"], rows), "_score": generator.normal(size=rows)})
    table = drift(_Stand(["number", "sparse", "category"]), frame, frame)
    assert (table["band"] == "stable").all()
    psi_rows = table["measure"] == "PSI"
    assert (table.loc[psi_rows, "value"] == 0).all() and (table.loc[~psi_rows, "value"] == 1).all()


@settings(max_examples=15, deadline=None)
@given(st.lists(st.tuples(st.sampled_from("ABCDE"), st.booleans()), min_size=1, max_size=60))
def test_each_realised_rate_lies_inside_its_interval_and_the_grades_add_up_to_all(loans):
    frame = pd.DataFrame({"_grade": [g for g, _ in loans], "defaulted": [int(d) for _, d in loans],
                          "_pd": [0.02] * len(loans)})
    table = realised_by_grade(_Stand(), frame).set_index("grade")
    known = table[table["loans"] > 0]
    assert (known["low"] <= known["realised_rate"]).all() and (known["realised_rate"] <= known["high"]).all()
    assert table.drop(index="all")["loans"].sum() == table.loc["all", "loans"] == len(loans)
    assert table.drop(index="all")["defaults"].sum() == table.loc["all", "defaults"]


def test_the_living_population_of_a_day_is_its_stored_profile_or_nothing_when_the_lake_cannot_build_it(tmp_path):
    from features.profile.store import ProfileInfo, ProfileStore

    day = dt.date(2026, 3, 31)
    stored = pd.DataFrame({"uscc": ["91350100M000100Y43"], "elec_usage_12m": [12.5]})
    ProfileStore(tmp_path).write(stored, ProfileInfo(day.isoformat(), "v", 1, "2026-04-01T00:00:00", "pandas", 0.1))
    pd.testing.assert_frame_equal(_living(tmp_path, day), stored)
    assert _living(tmp_path, dt.date(2026, 4, 30)).empty  # an empty lake: nothing to build


def test_a_missing_share_that_moved_by_chance_does_not_stop_the_next_source_being_judged():
    """Each source's move is judged on its own: one within chance (1 point on 1,000 rows a side)
    is passed over, and a later one that moved from nothing to everything is named, in whole points."""
    missing = pd.concat([_missing(0.01), _missing(0.9, before=0.0)], ignore_index=True)
    said, rules = _say(missing=missing)
    assert said == "retrain" and rules == ["electricity: elec_usage_12m missing among applicants 0% → 90% (+90 points) "
                                           "— the department's deliveries changed"]
    said, rules = _say(missing=_missing(1.0, before=0.0))
    assert rules[0].startswith("electricity: elec_usage_12m missing among applicants 0% → 100% (+100 points)")
