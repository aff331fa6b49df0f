"""Counterfactual advice on the model city's pre-credit list: lawful, minimal, and true when re-scored."""

from __future__ import annotations

import datetime as dt
import itertools
from types import SimpleNamespace

import numpy as np
import pandas as pd
import pytest

from features.profile.build import build
from features.registry import ACTIONS, actionable_features
from models.advice import advise_all, applicable, apply
from models.policy import GRADES

AS_OF = dt.date(2026, 6, 30)


@pytest.fixture(scope="module")
def advised(trained, model_home):
    profile = build(model_home, AS_OF).profile
    return profile, trained.bundle.decide(profile, explain=False), advise_all(trained.bundle, profile)


SEVERITY = {"approve": 0, "refer": 1, "decline": 2}


def _each_row(decided) -> list[SimpleNamespace]:
    """A decision of many rows as one decision per row (what a one-row call would have given: a row's
    decision depends on that row alone)."""
    return [SimpleNamespace(grade=[decided.grade[k]], decision=[decided.decision[k]], limit=[decided.limit[k]])
            for k in range(len(decided.grade))]


def _acceptable(before_grade, before_decision, after) -> bool:
    """What advice may promise: a better decision or a better grade, and never a decline."""
    better = SEVERITY[after.decision[0]] < SEVERITY[before_decision] or \
        GRADES.index(after.grade[0]) < GRADES.index(before_grade)
    return better and after.decision[0] != "decline"


def test_applying_the_advice_and_rescoring_gives_what_it_promises(trained, advised):
    profile, now, counsel = advised
    given = [i for i, c in enumerate(counsel) if c.advice is not None]
    assert len(given) > 20
    for i in given:
        a = counsel[i].advice
        assert all(applicable(action, profile.iloc[[i]])[0] for action in a.actions), "advised beyond the record"
        after = trained.bundle.decide(apply(a.actions, profile.iloc[[i]], trained.bundle), explain=False)
        assert (after.grade[0], after.decision[0], int(after.limit[0])) == (a.grade, a.decision, a.limit_yuan)
        assert _acceptable(now.grade[i], now.decision[i], after)
        assert a.zh.endswith(f"额度 ¥{a.limit_yuan:,}") and f"grade {a.grade}" in a.en
        assert a.decision != "decline"  # no advice ends at a decline and ¥0


def test_advice_is_found_wherever_the_record_allows_an_improvement(trained, advised):
    profile, now, counsel = advised
    wanting = [i for i in range(len(profile)) if now.grade[i] != "A" or now.decision[i] != "approve"]
    allowed = np.column_stack([applicable(a, profile) for a in ACTIONS])
    candidates = [i for i in wanting if allowed[i].any()]
    # every action each record allows, at once: apply changes a row only where its record shows what an action fixes
    after = _each_row(trained.bundle.decide(apply(list(ACTIONS), profile.iloc[candidates], trained.bundle),
                                            explain=False))
    allows = [i for i, decided in zip(candidates, after) if _acceptable(now.grade[i], now.decision[i], decided)]
    assert allows and sum(counsel[i].advice is not None for i in allows) >= 0.95 * len(allows)
    assert all(counsel[i].advice is None and "nothing to improve" in counsel[i].why_en
               for i in range(len(profile)) if i not in set(wanting))
    # where there is none, it says why, naming what still blocks the decision
    for i in wanting:
        if counsel[i].advice is None:
            assert counsel[i].why_zh and counsel[i].why_en, i


def test_the_advice_reaches_its_decision_with_the_fewest_actions(trained, advised):
    """The best decision within reach first, then the fewest actions: no smaller set reaches as good
    a decision without a decline."""
    profile, now, counsel = advised
    checked = 0
    for i, c in enumerate(counsel):
        a = c.advice
        if a is None or len(a.actions) < 2:
            continue
        needed = {n for action in a.actions for n in action.needs}
        for smaller in itertools.combinations(a.actions, len(a.actions) - 1):
            if needed - {x.code for x in smaller} and any(x.code not in needed for x in smaller):
                continue  # a set without an action another one needs is not a set advice may give
            after = trained.bundle.decide(apply(list(smaller), profile.iloc[[i]], trained.bundle), explain=False)
            assert not (_acceptable(now.grade[i], now.decision[i], after)
                        and SEVERITY[after.decision[0]] <= SEVERITY[a.decision]), (i, a.codes)
            checked += 1
    assert checked > 0


def test_advice_aims_at_the_knock_out_that_blocks_the_decision(trained, advised):
    """Every enterprise whose best decision within reach needs a knock-out lifted (lifting it, with
    everything else its record allows, decides better than everything else without it) is advised
    the action that lifts it; the others are told what blocks them when nothing is within reach."""
    profile, now, counsel = advised
    bundle = trained.bundle
    lifting = {a.code for a in ACTIONS if any(f in ("dishonest_listed_now", "penalty_serious_36m") for f, _ in a.sets)}
    knocked = [i for i in range(len(profile)) if now.knockouts[i]]
    assert knocked, "the test city has knock-outs"
    allowed = np.column_stack([applicable(a, profile) for a in ACTIONS])
    lifts = np.array([a.code in lifting for a in ACTIONS])
    liftable = [i for i in knocked if (allowed[i] & lifts).any()]  # the others: no lawful action lifts it
    # every action the record allows, and all of them but the lifting ones (apply skips what a row's record does not show)
    best = bundle.decide(apply(list(ACTIONS), profile.iloc[liftable], bundle), explain=False).decision
    others = [a for a in ACTIONS if a.code not in lifting]
    without = bundle.decide(apply(others, profile.iloc[liftable], bundle), explain=False).decision
    blocking = 0
    for i, best_i, without_i in zip(liftable, best, without):
        if SEVERITY[best_i] < SEVERITY[without_i] and best_i != "decline":
            blocking += 1
            advice = counsel[i].advice
            assert advice is not None and {a.code for a in advice.actions} & lifting, (i, counsel[i].why_en)
            assert advice.lifted
        elif counsel[i].advice is None:
            assert "nothing within reach" in counsel[i].why_en, (i, counsel[i].why_en)
    assert blocking > 0


def test_a_thin_file_is_told_what_data_would_let_the_platform_judge_it(trained, advised):
    """A non-approved enterprise whose tax returns the platform does not hold is advised to let it
    hold them wherever that, re-scored at the typical approved borrower of its kind holding them,
    would improve its decision or grade (and told so); where it would not, it is told why. Every
    one is told, whatever the advice, the grade and decision the platform could give once it holds
    the records it lacks (a statement, even where that is a decline)."""
    profile, now, counsel = advised
    bundle = trained.bundle
    share = next(a for a in ACTIONS if a.code == "DA01")
    thin = [i for i in range(len(profile)) if profile["has_tax_filings"].iloc[i] == 0 and now.decision[i] != "approve"]
    assert thin and "tax_filings" in bundle.reference["supplied"]
    helped = 0
    shared = apply([share], profile.iloc[thin], bundle)
    assert (pd.to_numeric(shared["has_tax_filings"]) == 1).all()
    sharing = [a for a in ACTIONS if a.supplies]  # apply lets each row share only what its record lacks
    judged_all = _each_row(bundle.decide(apply(sharing, profile.iloc[thin], bundle), explain=False))
    for i, after, judged in zip(thin, _each_row(bundle.decide(shared, explain=False)), judged_all):
        c = counsel[i]
        if _acceptable(now.grade[i], now.decision[i], after):
            helped += 1
            assert c.advice is not None, i  # the data alone helps: advice is given (perhaps with more)
        if c.advice is not None and "DA01" in c.advice.codes:
            assert "同类获批企业的中位水平" in c.advice.zh and "typical approved borrower" in c.advice.en
            assert c.advice.supplied == ["tax_filings"]
        elif c.advice is None:
            assert c.why_en, i
        assert c.data is not None and "tax_filings" in c.data.supplied, i
        assert (c.data.grade, c.data.decision, c.data.limit_yuan) == (judged.grade[0], judged.decision[0], judged.limit[0])
        assert f"评级为{judged.grade[0]}" in c.data_zh and f"grade {judged.grade[0]}" in c.data_en
    assert all(c.data is None for i, c in enumerate(counsel) if profile["has_tax_filings"].iloc[i] == 1
               and profile["has_electricity"].iloc[i] == 1)  # nothing lacking, nothing to say
    print(f"{len(thin)} non-approved thin files; the typical approved borrower's tax returns would help {helped}")


def test_what_an_enterprise_cannot_change_is_never_advised():
    fixed = {"firm_age_years", "district_code", "industry_section", "entity_type", "registered_capital",
             "tax_months_late_24m", "court_cases_total", "sources_covered"}
    assert not fixed & actionable_features()
    for action in ACTIONS:
        assert action.when, "an action applies only where the record shows what it fixes"
        if action.amount:
            assert "{amount}" in action.zh and "{amount}" in action.en
        assert all(value in (0.0, None) for _, value in action.sets), "an action only clears what the record shows"


def test_advice_starts_from_the_decision_as_made_when_a_knock_out_is_disputed(trained, advised):
    """A listed enterprise whose listing is under objection was referred, not declined (the
    policy's relief): its advice starts from that referral, and without the dispute from the decline."""
    profile, now, counsel = advised
    bundle = trained.bundle
    checked = 0
    for i in np.flatnonzero(profile["dishonest_listed_now"].to_numpy() == 1):
        row = profile.iloc[[int(i)]]
        disputed = [{"dishonest_listed_now"}]
        as_made = bundle.decide(row, explain=False, disputed=disputed)
        if as_made.grade[0] == "E" or now.decision[i] != "decline":
            continue  # the grade declines whatever the listing: relief changes nothing to start from
        assert as_made.decision[0] == "refer"
        relieved = advise_all(bundle, row, disputed=disputed)[0]
        plain = advise_all(bundle, row)[0]
        if relieved.advice is None or plain.advice is None:
            continue
        assert relieved.advice.from_decision == "refer" and plain.advice.from_decision == "decline"
        checked += 1
    assert checked > 0, "the test city has a listed enterprise below grade E with advice either way"


# ---------------------------------------------------------------- fast: advice on a hand-built scorer
#
# Advice asks of a bundle only its decisions (bundle.decide) and its typical records (reference's
# "supplied"). These tests give it a scorer whose PD is written out by hand, decided by the real
# policy (grades, knock-outs, limits), so that what advice promises can be checked row by row in
# milliseconds: the trained-model tests above check the same promises on the model city.

from dataclasses import dataclass as _dataclass, field as _field  # noqa: E402

from hypothesis import HealthCheck, given, settings, strategies as st  # noqa: E402

from features.registry import COVERAGE_FLAG  # noqa: E402
from models.advice import Counsel, advise, supplied_values  # noqa: E402
from models.policy import Policy  # noqa: E402

POLICY = Policy.load()
RISK = {  # PD added while the record shows it (> 0): what each lawful action can take away
    "tax_arrears_latest": 0.004, "elec_arrears_latest": 0.004, "water_arrears_latest": 0.002,
    "gas_arrears_latest": 0.001, "court_open_cases": 0.02, "penalty_count_36m": 0.003,
    "tax_months_late_12m": 0.006, "tax_months_in_arrears_12m": 0.012,
}
THIN = {"has_tax_filings": 0.03, "has_electricity": 0.01}  # PD added while the platform holds none of it
CLEAN = {
    "uscc": "91420500MA4ABCDE1X", "entity_type": "enterprise", "base_pd": 0.002, "capacity_yuan": 1_000_000.0,
    "tax_arrears_latest": 0.0, "tax_arrears_share_3m": 0.0, "elec_arrears_latest": 0.0, "elec_arrears_share_3m": 0.0,
    "water_arrears_latest": 0.0, "water_arrears_share_3m": 0.0, "gas_arrears_latest": 0.0, "gas_arrears_share_3m": 0.0,
    "sources_in_arrears": 0.0, "court_open_cases": 0.0, "court_open_amount": 0.0, "dishonest_listed_now": 0.0,
    "penalty_count_12m": 0.0, "penalty_count_36m": 0.0, "penalty_minor_36m": 0.0, "penalty_serious_36m": 0.0,
    "penalty_amount_36m": 0.0, "penalty_days_since_last": np.nan, "tax_months_late_12m": 0.0,
    "tax_late_share_12m": 0.0, "tax_months_in_arrears_12m": 0.0, "tax_arrears_12m": 0.0,
    "has_tax_filings": 1.0, "has_electricity": 1.0, "sources_covered": 6.0, "tax_sales_12m": 800_000.0,
    "elec_usage_12m": 40_000.0,
}
TYPICAL = {  # the typical approved holders' records, per kind of entity ("*": every kind)
    "tax_filings": {"*": {"population": 400, "values": {"tax_sales_12m": 600_000.0, "tax_months_late_12m": 0.0}},
                    "individual_business": {"population": 90, "values": {"tax_sales_12m": 150_000.0,
                                                                         "tax_months_late_12m": 1.0}}},
    "electricity": {"*": {"population": 300, "values": {"elec_usage_12m": 30_000.0}}},
}


@_dataclass
class _Decided:
    pd: np.ndarray
    grade: np.ndarray
    decision: np.ndarray
    limit: np.ndarray
    knockouts: list


@_dataclass
class Scorer:
    """Stands in for a ModelBundle: PD by hand, everything else by the shipped policy."""

    reference: dict | None = _field(default_factory=lambda: {"supplied": TYPICAL})
    version: str = "hand-built"
    calls: list = _field(default_factory=list)
    risk: dict = _field(default_factory=lambda: dict(RISK))

    def decide(self, profile, requested_yuan=None, num_threads=0, explain=True, disputed=None):
        self.calls.append({"rows": len(profile), "num_threads": num_threads, "explain": explain})
        pd_ = pd.to_numeric(profile["base_pd"]).to_numpy(dtype=float).copy()
        for feature, risk in self.risk.items():
            pd_ += risk * (np.nan_to_num(pd.to_numeric(profile[feature]).to_numpy(dtype=float)) > 0)
        for flag, risk in THIN.items():
            pd_ += risk * (pd.to_numeric(profile[flag]).to_numpy(dtype=float) == 0)
        grades = POLICY.grades(pd_)
        decision, knockouts = POLICY.decide(grades, profile, disputed)
        limit = POLICY.limits(profile["capacity_yuan"].to_numpy(dtype=float), grades, decision, requested_yuan)
        return _Decided(pd_, grades, decision, limit, knockouts)


def _rows(*changes: dict) -> pd.DataFrame:
    return pd.DataFrame([{**CLEAN, "uscc": f"E{i}", **change} for i, change in enumerate(changes)])


def _counsel(*changes: dict, scorer: Scorer | None = None, **options) -> list[Counsel]:
    return advise_all(scorer or Scorer(), _rows(*changes), **options)


def _codes(counsel: Counsel) -> list[str]:
    return [a.code for a in counsel.advice.actions]


TAX_ARREARS = {"tax_arrears_latest": 12_345.0, "tax_arrears_share_3m": 0.4, "sources_in_arrears": 1.0}
ELEC_ARREARS = {"elec_arrears_latest": 800.0, "elec_arrears_share_3m": 0.2}
WATER_ARREARS = {"water_arrears_latest": 300.0, "water_arrears_share_3m": 0.1}
GAS_ARREARS = {"gas_arrears_latest": 50.0, "gas_arrears_share_3m": 0.1}


def test_an_enterprise_graded_a_and_approved_is_told_there_is_nothing_to_improve():
    counsel = _counsel({}, TAX_ARREARS | {"base_pd": 0.0})  # arrears, yet still grade A: nothing to advise
    for c in counsel:
        assert c.advice is None and c.data is None
        assert c.why_en == "grade A and approved: nothing to improve" and c.why_zh == "评级A且已批准，无需改进"


def test_a_weaker_enterprise_whose_record_shows_nothing_to_fix_is_told_so_not_advised():
    (c,) = _counsel({"base_pd": 0.02})  # grade C, referred, nothing on record an action fixes
    assert c.advice is None and c.data is None
    assert c.why_en == "the record shows nothing the enterprise can lawfully do that bears on this decision"
    assert c.why_zh == "记录中没有企业可依法采取、能改变本决策的行动"


def test_the_advice_reaches_the_best_decision_within_reach_before_it_counts_actions():
    """A year of filing on time, or of paying in full, alone raises the grade (D to C, still
    referred); both together reach an approval: the two actions are advised, not one."""
    (c,) = _counsel({"tax_months_late_12m": 3.0, "tax_months_in_arrears_12m": 2.0, "tax_arrears_12m": 9_000.0,
                     "base_pd": 0.013})  # 0.031: D, referred; either alone C, both B
    a = c.advice
    assert _codes(c) == ["AC08", "AC09"] and a.codes == "AC08;AC09" and (a.decision, a.grade) == ("approve", "B")
    assert (a.from_grade, a.from_decision) == ("D", "refer") and c.data is None  # nothing lacking: nothing to say
    assert a.pd == pytest.approx(0.013) and a.limit_yuan == 400_000


def test_of_sets_reaching_the_same_decision_the_fewest_actions_then_the_lowest_pd_is_advised():
    """Any one of three bills paid reaches approval: the one that lowers the PD most is advised,
    alone; paying more than needed is never advised."""
    (c,) = _counsel(TAX_ARREARS | ELEC_ARREARS | WATER_ARREARS | {"tax_arrears_share_3m": 0.4, "base_pd": 0.006})
    # PD 0.016 (C); without tax 0.012, without electricity 0.012 (B), without water 0.014 (B)
    assert len(c.advice.actions) == 1 and _codes(c)[0] in ("AC01", "AC02")
    assert c.advice.pd == pytest.approx(0.012)
    (c,) = _counsel(ELEC_ARREARS | WATER_ARREARS | GAS_ARREARS | {"base_pd": 0.0085})  # 0.0155: C
    assert _codes(c) == ["AC02"] and c.advice.decision == "approve"  # not the water or gas bill, not all three


def test_a_set_that_only_raises_the_grade_is_advised_where_the_decision_cannot_improve():
    (c,) = _counsel(TAX_ARREARS | {"base_pd": 0.003})  # 0.007: B, approved
    assert c.advice is not None and (c.advice.from_grade, c.advice.grade) == ("B", "A")
    assert c.advice.decision == c.advice.from_decision == "approve" and c.advice.limit_yuan == 500_000
    assert c.advice.zh.startswith("结清当前欠税 ¥12,345") and "评级升至A" in c.advice.zh and "决策改为" not in c.advice.zh
    assert c.advice.en == "pay the tax arrears of ¥12,345 → grade A, limit ¥500,000"
    (c,) = _counsel(WATER_ARREARS | {"base_pd": 0.05})  # 0.052: D, referred; paying gives D still
    assert c.advice is None and "the grade stays D and the decision refer" in c.why_en
    assert "评级仍为D，决策仍为转人工审查" in c.why_zh and "AC03（" in c.why_zh and "AC03 (pay the water arrears" in c.why_en


def test_a_decline_is_never_advice_and_the_knock_out_that_stands_is_named():
    """A listed enterprise whose record shows no court case to perform cannot lift the listing by
    any lawful action advice knows of: paying its tax arrears would still decline; it is told the
    knock-out that stands, not advised to pay for a decline at ¥0."""
    (c,) = _counsel(TAX_ARREARS | {"dishonest_listed_now": 1.0, "court_open_cases": np.nan})
    assert c.advice is None
    assert c.why_en.startswith("nothing within reach: even after AC01 (pay the tax arrears of)") or \
        c.why_en.startswith("nothing within reach: even after AC01 (pay the tax arrears of")
    assert c.why_en.endswith("knock-out KO01 (the enterprise is on the dishonest-debtor list now) still stands")
    assert c.why_zh.endswith(f"否决规则 KO01（{POLICY.knockouts[0].zh}）仍然成立")
    # a grade that stays E declines too: told the grade, not a knock-out
    (c,) = _counsel(TAX_ARREARS | {"base_pd": 0.2})
    assert c.advice is None and c.why_en.endswith("the grade stays E and the decision decline")
    assert "KO" not in c.why_en
    # a knock-out that refers is not what blocks a decline by the grade; the attempt named is the
    # closest one (every bill paid), not the first tried
    (c,) = _counsel(TAX_ARREARS | WATER_ARREARS | {"base_pd": 0.2, "penalty_serious_36m": 1.0,
                                                   "penalty_days_since_last": 30.0})
    assert c.advice is None and "KO02" not in c.why_en
    assert c.why_en == ("nothing within reach: even after AC01 (pay the tax arrears of); AC03 (pay the water arrears of), "
                        "the grade stays E and the decision decline")
    assert c.why_zh == "无可及的改进：即使采取 AC01（结清当前欠税）、AC03（结清当前水费欠费），评级仍为E，决策仍为拒绝"


def test_lifting_the_knock_out_that_blocks_the_decision_is_advised_and_named():
    (c,) = _counsel({"dishonest_listed_now": 1.0, "court_open_cases": 2.0, "court_open_amount": 56_000.0})
    a = c.advice
    assert _codes(c) == ["AC05"] and a.lifted == ["KO01"] and (a.from_decision, a.decision) == ("decline", "approve")
    assert a.amounts == [56_000.0]
    assert a.en == ("perform the court enforcement cases of ¥56,000, which closes them and lifts any dishonest listing"
                    " → knock-out KO01 lifted, grade A, approve, limit ¥500,000")
    assert a.zh == ("履行法院执行案件确定的义务 ¥56,000，结案并移出失信名单 → 解除否决规则KO01，评级升至A，决策改为批准，额度 ¥500,000")
    (c,) = _counsel({"dishonest_listed_now": 1.0, "court_open_cases": 0.0})  # performed already: ask the court
    assert _codes(c) == ["AC10"] and c.advice.lifted == ["KO01"] and c.advice.amounts == [None]
    assert c.advice.zh.endswith("→ 解除否决规则KO01，评级保持A，决策改为批准，额度 ¥500,000")
    assert c.advice.en.startswith("perform what the judgement requires and ask the court to remove the dishonest-debtor "
                                  "listing → knock-out KO01 lifted, grade A, approve")


def test_a_refer_is_advice_where_a_decline_cannot_be_lifted_further():
    """A serious penalty still inside its publicity period refers whatever is paid; a declined
    grade E enterprise that can reach that referral is advised it (better than a decline)."""
    (c,) = _counsel(TAX_ARREARS | {"base_pd": 0.075, "penalty_serious_36m": 1.0, "penalty_count_36m": 1.0,
                                   "penalty_days_since_last": 100.0})
    a = c.advice
    assert a is not None and (a.from_decision, a.decision) == ("decline", "refer") and a.lifted == []
    assert _codes(c) == ["AC01"] and a.grade == "D"
    assert "决策改为转人工审查" in a.zh and "→ grade D, refer, limit" in a.en


def test_advice_says_what_each_action_changes_and_the_law_it_rests_on():
    (c,) = _counsel({"penalty_count_36m": 2.0, "penalty_minor_36m": 2.0, "penalty_amount_36m": 3_000.0,
                     "penalty_days_since_last": 90.0, "base_pd": 0.003})  # 0.006: B
    assert _codes(c) == ["AC06"]
    (action,) = c.advice.as_json()["actions"]
    assert action == {"code": "AC06", "horizon": "now", "amount_yuan": None,
                      "legal_basis": c.advice.actions[0].legal_basis,
                      "changes": {"penalty_count_12m": 0.0, "penalty_count_36m": 0.0, "penalty_minor_36m": 0.0,
                                  "penalty_amount_36m": 0.0, "penalty_days_since_last": None}}
    (c,) = _counsel(TAX_ARREARS | {"tax_months_late_12m": 3.0, "base_pd": 0.003})
    whole = c.advice.as_json()
    assert [x["code"] for x in whole["actions"]] == ["AC01", "AC08"]
    paid, filed = whole["actions"]
    assert paid["changes"] == {"tax_arrears_latest": 0.0, "tax_arrears_share_3m": 0.0, "sources_in_arrears": "minus one"}
    assert paid["amount_yuan"] == 12_345.0 and paid["legal_basis"] is None and paid["horizon"] == "now"
    assert filed["horizon"] == "12m" and filed["amount_yuan"] is None
    assert (whole["grade"], whole["decision"], whole["limit_yuan"]) == ("A", "approve", 500_000)
    assert whole["pd"] == round(c.advice.pd, 6) and whole["zh"] == c.advice.zh and whole["en"] == c.advice.en


def test_a_year_of_paying_in_full_is_advised_with_paying_what_is_owed_now():
    owing = {"tax_months_in_arrears_12m": 2.0, "tax_arrears_12m": 9_000.0, "base_pd": 0.01}
    (c,) = _counsel(TAX_ARREARS | owing)  # 0.026: C; paying what is owed now alone leaves C (0.022)
    assert _codes(c) == ["AC01", "AC09"] and c.advice.grade == "B"  # a year of paying in full starts with it
    (c,) = _counsel(owing)  # nothing owed now: nothing to add
    assert _codes(c) == ["AC09"] and c.advice.grade == "B"


def test_no_advice_has_more_actions_than_asked_for():
    row = {"tax_months_late_12m": 3.0, "tax_months_in_arrears_12m": 2.0, "tax_arrears_12m": 9_000.0,
           "base_pd": 0.013}  # 0.031: D; both years of keeping to it are needed for an approval
    (c,) = _counsel(row)
    assert _codes(c) == ["AC08", "AC09"] and c.advice.decision == "approve"
    (c,) = _counsel(row, max_actions=1)
    assert _codes(c) == ["AC09"] and (c.advice.grade, c.advice.decision) == ("C", "refer")


def test_every_set_of_allowed_actions_is_weighed_after_one_reached_twice():
    """A year of paying in full brings paying what is owed now with it, so the set {AC01, AC09}
    is reached twice (AC09 alone, then AC01 with AC09). The pairs tried after it are weighed all
    the same: performing the court cases and filing on time, together, lift the listing and reach
    an approval with two actions, where any set holding a tax action needs three."""
    scorer = Scorer(risk=RISK | {"tax_arrears_latest": 0.001, "tax_months_in_arrears_12m": 0.001,
                                 "tax_months_late_12m": 0.015})
    (c,) = _counsel(TAX_ARREARS | {"tax_months_in_arrears_12m": 2.0, "tax_arrears_12m": 9_000.0,
                                   "tax_months_late_12m": 3.0, "dishonest_listed_now": 1.0,
                                   "court_open_cases": 1.0, "court_open_amount": 5_000.0}, scorer=scorer)
    # PD 0.041 under KO01 (decline); performing the cases alone leaves 0.019 (C, refer)
    assert _codes(c) == ["AC05", "AC08"] and c.advice.lifted == ["KO01"]
    assert (c.advice.from_decision, c.advice.decision, c.advice.grade) == ("decline", "approve", "A")


def test_of_attempts_equally_far_from_any_improvement_the_fewest_actions_are_named():
    """A grade-E enterprise whose listing can be removed (no case left to perform) and whose serious
    penalty is past its publicity period: neither action, nor both, moves a PD that the record's
    other risks keep at E. The words name the first of those equally close attempts, the single
    action, not a longer list that did no better."""
    (c,) = _counsel({"base_pd": 0.2, "dishonest_listed_now": 1.0, "court_open_cases": 0.0,
                     "penalty_serious_36m": 1.0, "penalty_days_since_last": 400.0})
    assert c.advice is None
    assert c.why_en.startswith("nothing within reach: even after AC10 (perform what the judgement requires")
    assert "AC07" not in c.why_en and "AC07" not in c.why_zh
    assert c.why_en.endswith("the grade stays E and the decision decline")


def test_the_promised_limit_is_capped_at_the_amount_requested():
    row = TAX_ARREARS | {"base_pd": 0.003}
    capped, free = _counsel(row, row, requested_yuan=np.array([120_000.0, np.nan]))
    assert capped.advice.limit_yuan == 120_000 and free.advice.limit_yuan == 500_000
    assert capped.advice.en.endswith("limit ¥120,000")


def test_decisions_already_made_are_not_made_again_and_give_the_same_advice():
    scorer = Scorer()
    profile = _rows(TAX_ARREARS | {"base_pd": 0.003}, {}, {"dishonest_listed_now": 1.0, "court_open_cases": 1.0})
    decided = scorer.decide(profile, explain=False)
    scorer.calls.clear()
    given_decisions = advise_all(scorer, profile, decided=decided)
    assert len(scorer.calls) == 1  # only the trials are scored
    fresh = Scorer()
    made = advise_all(fresh, profile)
    assert len(fresh.calls) == 2 and all(call["explain"] is False for call in fresh.calls)
    assert [c.advice and c.advice.as_json() for c in given_decisions] == [c.advice and c.advice.as_json() for c in made]
    assert [c.advice for c in made] == advise(Scorer(), profile)


def test_a_handful_of_rows_is_scored_on_one_thread_and_a_batch_on_all():
    for rows, threads in ((1, 1), (99, 1), (100, 0), (101, 0)):
        scorer = Scorer()
        advise_all(scorer, _rows(*([TAX_ARREARS | {"base_pd": 0.003}] * rows)))
        assert {call["num_threads"] for call in scorer.calls} == {threads}, rows
    scorer = Scorer()
    advise_all(scorer, _rows(TAX_ARREARS | {"base_pd": 0.003}), num_threads=3)
    assert {call["num_threads"] for call in scorer.calls} == {3}


def test_advice_starts_from_the_decision_as_made_under_a_disputed_listing():
    """A listing under objection refers instead of declining (the policy's relief); the advice
    starts from that referral, and is re-scored with the same dispute."""
    row = {"dishonest_listed_now": 1.0, "court_open_cases": 1.0, "court_open_amount": 1_000.0}
    (disputed,) = _counsel(row, disputed=[{"dishonest_listed_now"}])
    (plain,) = _counsel(row)
    assert disputed.advice.from_decision == "refer" and plain.advice.from_decision == "decline"
    assert disputed.advice.decision == plain.advice.decision == "approve"
    assert disputed.advice.lifted == plain.advice.lifted == ["KO01"]
    # a listing advice cannot lift: under objection the enterprise is referred, and paying its tax
    # arrears raises its grade under that same referral (re-scored with the dispute, not as a decline)
    row = TAX_ARREARS | {"dishonest_listed_now": 1.0, "court_open_cases": np.nan, "base_pd": 0.012}  # 0.016: C
    (disputed,) = _counsel(row, disputed=[{"dishonest_listed_now"}])
    (plain,) = _counsel(row)
    assert _codes(disputed) == ["AC01"] and (disputed.advice.grade, disputed.advice.decision) == ("B", "refer")
    assert disputed.advice.lifted == [] and disputed.advice.limit_yuan == 400_000
    assert plain.advice is None and "knock-out KO01" in plain.why_en
    # where two knock-outs refer and none can be lifted, the first the policy lists is named
    (c,) = _counsel(row | {"base_pd": 0.05, "penalty_serious_36m": 1.0, "penalty_days_since_last": 30.0},
                    disputed=[{"dishonest_listed_now"}])
    assert c.advice is None and c.why_en.endswith("knock-out KO01 (the enterprise is on the dishonest-debtor list now) still stands")


def test_advice_names_each_enterprise_by_its_code_in_the_order_asked():
    profile = _rows({}, TAX_ARREARS | {"base_pd": 0.003}, ELEC_ARREARS | {"base_pd": 0.003})
    profile.index = [30, 10, 20]  # a profile filtered from a larger one
    counsel = advise_all(Scorer(), profile)
    assert counsel[0].advice is None
    assert [(c.advice.uscc, _codes(c)) for c in counsel[1:]] == [("E1", ["AC01"]), ("E2", ["AC02"])]
    anonymous = advise_all(Scorer(), profile.drop(columns="uscc"))
    assert [c.advice and c.advice.uscc for c in anonymous] == [None, "1", "2"]
    assert advise_all(Scorer(), profile.iloc[:0]) == [] and advise(Scorer(), profile.iloc[:0]) == []


# ---------------------------------------------------------------- data the platform could hold

def test_a_thin_file_is_advised_to_share_its_records_and_told_the_figures_are_typical():
    (c,) = _counsel({"has_tax_filings": 0.0, "tax_sales_12m": np.nan, "sources_covered": 5.0})  # 0.032: D
    a = c.advice
    assert _codes(c) == ["DA01"] and a.supplied == ["tax_filings"] and (a.grade, a.decision) == ("A", "approve")
    assert a.zh.startswith("授权平台向税务部门调取本企业的纳税申报信息（银税互动） → 若调取的记录与同类获批企业的中位水平相当，")
    assert "typical approved borrower of its kind" in a.en
    assert a.as_json()["actions"][0]["changes"] == {"has_tax_filings": 1.0}
    assert c.data is not None and c.data.supplied == ["tax_filings"] and (c.data.grade, c.data.decision) == ("A", "approve")
    assert c.data_zh == "若允许平台调取税务记录，平台即可据此评估：按同类获批企业的中位水平，评级为A，决策为批准，额度 ¥500,000"
    assert c.data_en == ("were the platform to hold the tax bureau's records, it could judge them: at the typical "
                         "approved borrower's records of its kind, grade A, approve, limit ¥500,000")


def test_a_thin_file_is_told_what_its_records_would_let_the_platform_judge_even_when_that_declines():
    (c,) = _counsel({"has_tax_filings": 0.0, "has_electricity": 0.0, "base_pd": 0.2, "tax_sales_12m": np.nan,
                     "elec_usage_12m": np.nan})
    assert c.advice is None and c.why_en.endswith("the grade stays E and the decision decline")
    assert c.data is not None and c.data.decision == "decline" and c.data.supplied == ["tax_filings", "electricity"]
    assert c.data_zh.startswith("若允许平台调取税务、用电记录") and "决策为拒绝，额度 ¥0" in c.data_zh
    assert c.data_en.startswith("were the platform to hold the tax bureau's and power company's records")
    (held,) = _counsel({"base_pd": 0.02})
    assert held.data is None and held.data_zh is None and held.data_en is None


def test_sharing_is_not_advised_where_the_model_holds_no_typical_record_or_the_profile_cannot_tell():
    thin = {"has_tax_filings": 0.0, "tax_sales_12m": np.nan}
    (c,) = _counsel(thin, scorer=Scorer(reference={"supplied": {}}))
    assert c.advice is None and c.data is None and "shows nothing" in c.why_en
    (c,) = _counsel(thin, scorer=Scorer(reference=None))
    assert c.advice is None and c.data is None
    (c,) = advise_all(Scorer(), _rows(thin | TAX_ARREARS).drop(columns="has_electricity").assign(has_electricity=1.0))
    assert "DA01" in _codes(c)
    profile = _rows(thin | TAX_ARREARS)
    scorer = Scorer()
    profile_without = profile.drop(columns="has_tax_filings")
    scorer.decide = lambda p, *a, **k: Scorer.decide(scorer, p.assign(has_tax_filings=0.0), *a, **k)
    (c,) = advise_all(scorer, profile_without)  # the profile cannot say whether it holds tax returns
    assert "DA01" not in (_codes(c) if c.advice else []) and c.data is None


def test_shared_records_take_the_typical_values_of_the_enterprise_kind_and_keep_what_is_known():
    share = next(a for a in ACTIONS if a.code == "DA01")
    profile = _rows({"has_tax_filings": 0.0, "tax_sales_12m": np.nan, "tax_months_late_12m": np.nan,
                     "entity_type": "individual_business"},
                    {"has_tax_filings": 0.0, "tax_sales_12m": 70_000.0, "tax_months_late_12m": np.nan,
                     "entity_type": "cooperative"},
                    {"tax_sales_12m": 5.0})  # holds its returns: untouched
    after = apply([share], profile, Scorer())
    assert list(after["tax_sales_12m"]) == [150_000.0, 70_000.0, 5.0]  # its kind's; a known figure kept
    assert list(after["tax_months_late_12m"]) == [1.0, 0.0, 0.0]  # a cooperative takes every kind's
    assert list(after[COVERAGE_FLAG["tax_filings"]]) == [1.0, 1.0, 1.0]
    assert list(after["sources_covered"]) == [7.0, 7.0, 6.0]
    assert profile["has_tax_filings"].tolist() == [0.0, 0.0, 1.0]  # the profile asked about is not changed
    with pytest.raises(ValueError, match="model hand-built holds no typical record of tax_filings"):
        apply([share], profile, Scorer(reference={"supplied": {"electricity": TYPICAL["electricity"]}}))


def test_a_shared_record_that_is_a_category_takes_the_typical_holders_too():
    scorer = Scorer(reference={"supplied": {"tax_filings": {"*": {"population": 50, "values": {
        "tax_sales_12m": 600_000.0, "tax_regime": "general", "tax_note": None}}}}})
    profile = _rows({"has_tax_filings": 0.0, "tax_sales_12m": np.nan}, {"has_tax_filings": 0.0, "tax_sales_12m": np.nan},
                    {}).assign(tax_regime=pd.Series([None, "small_scale", "small_scale"], dtype="category"),
                               tax_note=pd.Series(["x", None, None], dtype=object))
    profile["tax_regime"] = profile["tax_regime"].cat.add_categories(["general"])
    after = apply([next(a for a in ACTIONS if a.code == "DA01")], profile, scorer)
    assert list(after["tax_regime"].astype(object)) == ["general", "small_scale", "small_scale"]
    assert after["tax_regime"].dtype == profile["tax_regime"].dtype
    assert after["tax_note"].tolist()[:2] == ["x", None] or pd.isna(after["tax_note"].iloc[1])
    assert list(after["tax_sales_12m"]) == [600_000.0, 600_000.0, 800_000.0]
    values = supplied_values(scorer, "tax_filings", profile.drop(columns="entity_type"), np.array([0, 1]))
    assert values == {"tax_sales_12m": [600_000.0] * 2, "tax_regime": ["general"] * 2, "tax_note": [None] * 2}
    assert supplied_values(scorer, "tax_filings", profile, np.array([], dtype=int)) == {}


# ---------------------------------------------------------------- what the record allows

def test_an_action_applies_only_where_the_record_shows_what_it_fixes():
    by_code = {a.code: a for a in ACTIONS}
    profile = _rows({}, {"penalty_count_36m": 1.0, "penalty_days_since_last": 89.0},
                    {"penalty_count_36m": 1.0, "penalty_days_since_last": 90.0},
                    {"penalty_count_36m": 1.0, "penalty_days_since_last": np.nan},
                    {"penalty_serious_36m": 1.0, "penalty_count_36m": 1.0, "penalty_days_since_last": 364.0},
                    {"penalty_serious_36m": 1.0, "penalty_count_36m": 1.0, "penalty_days_since_last": 365.0},
                    {"dishonest_listed_now": 1.0, "court_open_cases": 0.0},
                    {"dishonest_listed_now": 1.0, "court_open_cases": 1.0},
                    {"dishonest_listed_now": 0.5, "court_open_cases": 0.0},
                    {"tax_arrears_latest": np.nan})
    assert list(applicable(by_code["AC06"], profile)) == [False, False, True, False, False, False, False, False, False, False]
    assert list(applicable(by_code["AC07"], profile)) == [False, False, False, False, False, True, False, False, False, False]
    assert list(applicable(by_code["AC10"], profile)) == [False] * 6 + [True, False, False, False]
    assert list(applicable(by_code["AC05"], profile)) == [False] * 7 + [True, False, False]
    assert not applicable(by_code["AC01"], profile).any()  # nothing owed, or not known: nothing to pay
    assert applicable(by_code["AC01"], _rows({"tax_arrears_latest": 0.01}))[0]


def test_applying_an_action_changes_only_the_rows_it_applies_to_and_counts_never_fall_below_zero():
    pay = next(a for a in ACTIONS if a.code == "AC01")
    profile = _rows(TAX_ARREARS | {"sources_in_arrears": 2.0}, TAX_ARREARS | {"sources_in_arrears": 0.0}, {"sources_in_arrears": 3.0})
    before = profile.copy()
    after = apply([pay], profile)
    assert list(after["tax_arrears_latest"]) == [0.0, 0.0, 0.0] and list(after["tax_arrears_share_3m"]) == [0.0, 0.0, 0.0]
    assert list(after["sources_in_arrears"]) == [1.0, 0.0, 3.0]
    pd.testing.assert_frame_equal(profile, before)
    repair = next(a for a in ACTIONS if a.code == "AC06")
    repaired = apply([repair], _rows({"penalty_count_36m": 1.0, "penalty_days_since_last": 400.0}))
    assert repaired["penalty_days_since_last"].isna().all() and repaired["penalty_count_36m"].iloc[0] == 0.0


@settings(max_examples=12, deadline=None, derandomize=True, database=None, suppress_health_check=list(HealthCheck))
@given(st.lists(st.fixed_dictionaries({
    "base_pd": st.sampled_from([0.0, 0.003, 0.008, 0.012, 0.025, 0.05, 0.07, 0.2]),
    "tax_arrears_latest": st.sampled_from([0.0, 500.0, np.nan]),
    "elec_arrears_latest": st.sampled_from([0.0, 800.0]),
    "water_arrears_latest": st.sampled_from([0.0, 300.0]),
    "court_open_cases": st.sampled_from([0.0, 1.0, np.nan]),
    "dishonest_listed_now": st.sampled_from([0.0, 1.0]),
    "penalty_serious_36m": st.sampled_from([0.0, 1.0]),
    "penalty_count_36m": st.sampled_from([0.0, 1.0]),
    "penalty_days_since_last": st.sampled_from([np.nan, 30.0, 200.0, 400.0]),
    "tax_months_in_arrears_12m": st.sampled_from([0.0, 2.0]),
    "has_tax_filings": st.sampled_from([0.0, 1.0]),
}), min_size=1, max_size=3))
def test_every_advice_is_lawful_true_when_rescored_better_and_never_a_decline(rows):
    scorer = Scorer()
    profile = _rows(*rows)
    now = scorer.decide(profile)
    counsel = advise_all(scorer, profile)
    for i, c in enumerate(counsel):
        row = profile.iloc[[i]]
        wanting = now.grade[i] != "A" or now.decision[i] != "approve"
        assert (c.advice is None) or wanting
        thin = profile["has_tax_filings"].iloc[i] == 0
        assert (c.data is not None) == bool(thin)  # a thin file is always told what its returns would let be judged
        if thin:
            assert [x.code for x in c.data.actions] == ["DA01"] and c.data.supplied == ["tax_filings"]
        if c.advice is None:
            assert c.why_en and c.why_zh
            continue
        a = c.advice
        assert all(applicable(action, row)[0] for action in a.actions), "advised beyond the record"
        after = scorer.decide(apply(a.actions, row, scorer))
        assert (after.grade[0], after.decision[0], int(after.limit[0])) == (a.grade, a.decision, a.limit_yuan)
        assert after.pd[0] == pytest.approx(a.pd)
        assert a.decision != "decline"
        assert SEVERITY[a.decision] < SEVERITY[now.decision[i]] or GRADES.index(a.grade) < GRADES.index(now.grade[i])
        assert (a.from_grade, a.from_decision) == (now.grade[i], now.decision[i])
        assert a.lifted == sorted({k.code for k in now.knockouts[i]} - {k.code for k in after.knockouts[0]})
        # no set the record allows reaches a better decision; none as good with fewer actions
        allowed = [x for x in ACTIONS if applicable(x, row)[0] and (not x.supplies or x.supplies in TYPICAL)]
        for size in range(1, len(allowed) + 1):
            for subset in itertools.combinations(allowed, size):
                codes = {x.code for x in subset}
                if any(n in {y.code for y in allowed} and n not in codes for x in subset for n in x.needs):
                    continue
                tried = scorer.decide(apply(list(subset), row, scorer))
                if tried.decision[0] == "decline":
                    continue
                improves = SEVERITY[tried.decision[0]] < SEVERITY[now.decision[i]] or \
                    GRADES.index(tried.grade[0]) < GRADES.index(now.grade[i])
                if improves:
                    assert SEVERITY[tried.decision[0]] >= SEVERITY[a.decision], (a.codes, codes)
                    if SEVERITY[tried.decision[0]] == SEVERITY[a.decision]:
                        assert size >= len(a.actions), (a.codes, codes)
                        if size == len(a.actions):
                            assert tried.pd[0] >= a.pd - 1e-12, (a.codes, codes)


def test_advice_gives_its_pd_to_six_decimals_as_an_answer_does():
    (c,) = _counsel(TAX_ARREARS | {"base_pd": 0.0031234567})
    assert round(c.advice.pd, 7) != round(c.advice.pd, 6)  # the PD has more to give than is shown
    assert c.advice.as_json()["pd"] == round(c.advice.pd, 6)


def test_of_equally_good_sets_the_first_in_the_registrys_order_is_advised():
    """Paying the tax or the power arrears takes the same risk away, and either alone reaches grade
    A: the same record always gets the same advice, the first action of the registry (AC01)."""
    (c,) = _counsel(TAX_ARREARS | ELEC_ARREARS | {"base_pd": 0.0005})
    assert _codes(c) == ["AC01"] and c.advice.grade == "A"


def test_of_attempts_that_reach_nothing_the_closest_is_named_not_the_last():
    (c,) = _counsel(TAX_ARREARS | GAS_ARREARS | {"base_pd": 0.2}, max_actions=1)
    assert c.advice is None and c.why_en.startswith("nothing within reach: even after AC01 (") and "AC04" not in c.why_en


def test_sharing_records_that_would_make_the_decision_worse_is_never_advice_but_is_still_stated():
    """Where the typical holder's records weigh more than their absence, letting the platform hold
    them lowers the grade: a data statement, never advice."""
    scorer = Scorer(risk={**RISK, "elec_usage_12m": 0.02})
    (c,) = _counsel({"has_electricity": 0.0, "elec_usage_12m": np.nan}, scorer=scorer)
    assert (c.advice is None) and c.data is not None and c.data.supplied == ["electricity"]
    assert (c.data.from_grade, c.data.from_decision, c.data.grade, c.data.decision) == ("B", "approve", "C", "refer")


def test_a_thin_file_is_told_what_all_its_records_would_let_the_platform_judge_whatever_max_actions():
    (c,) = _counsel({"has_tax_filings": 0.0, "has_electricity": 0.0, "tax_sales_12m": np.nan, "elec_usage_12m": np.nan,
                     "base_pd": 0.002}, max_actions=1)
    assert c.data is not None and c.data.supplied == ["tax_filings", "electricity"]
    assert c.advice is not None and len(c.advice.actions) == 1  # advice keeps to what was asked for


def test_shared_records_cover_every_figure_any_kind_of_holder_has():
    typical = {"tax_filings": {"*": {"population": 400, "values": {"tax_sales_12m": 600_000.0, "tax_months_late_12m": 0.0}},
                               "individual_business": {"population": 90, "values": {"tax_sales_12m": 150_000.0}}}}
    rows = _rows({"entity_type": "individual_business"}, {"entity_type": "enterprise"})
    values = supplied_values(Scorer(reference={"supplied": typical}), "tax_filings", rows, np.array([0, 1]))
    assert values == {"tax_sales_12m": [150_000.0, 600_000.0], "tax_months_late_12m": [None, 0.0]}
