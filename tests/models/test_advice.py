"""Counterfactual advice on the model city's pre-credit list: lawful, minimal, and true when re-scored."""

from __future__ import annotations

import datetime as dt
import itertools

import numpy as np
import pytest

from features.profile.build import build
from features.registry import ACTIONS, actionable_features
from models.advice import advise, applicable, apply
from models.policy import GRADES

AS_OF = dt.date(2026, 6, 30)


@pytest.fixture(scope="module")
def advised(trained, model_home):
    profile = build(model_home, AS_OF).profile
    return profile, trained.bundle.decide(profile, explain=False), advise(trained.bundle, profile)


def _improves(before_grade, before_decision, after) -> bool:
    return GRADES.index(after.grade[0]) < GRADES.index(before_grade) or (
        after.decision[0] == "approve" and before_decision != "approve")


def test_applying_the_advice_and_rescoring_gives_what_it_promises(trained, advised):
    profile, now, advice = advised
    given = [i for i, a in enumerate(advice) if a is not None]
    assert len(given) > 20
    for i in given:
        a = advice[i]
        assert all(applicable(action, profile.iloc[[i]])[0] for action in a.actions), "advised beyond the record"
        after = trained.bundle.decide(apply(a.actions, profile.iloc[[i]]), explain=False)
        assert (after.grade[0], after.decision[0], int(after.limit[0])) == (a.grade, a.decision, a.limit_yuan)
        assert _improves(now.grade[i], now.decision[i], after)
        assert a.zh.endswith(f"额度 ¥{a.limit_yuan:,}") and f"grade {a.grade}" in a.en


def test_advice_is_found_wherever_the_record_allows_an_improvement(trained, advised):
    profile, now, advice = advised
    wanting = [i for i in range(len(profile)) if now.grade[i] != "A" or now.decision[i] != "approve"]
    allows = []
    for i in wanting:
        row = profile.iloc[[i]]
        everything = [a for a in ACTIONS if applicable(a, row)[0]]
        if everything and _improves(now.grade[i], now.decision[i],
                                    trained.bundle.decide(apply(everything, row), explain=False)):
            allows.append(i)
    assert allows and sum(advice[i] is not None for i in allows) >= 0.95 * len(allows)
    assert all(advice[i] is None for i in range(len(profile)) if i not in set(wanting))


def test_the_advice_is_the_smallest_set_that_works(trained, advised):
    profile, now, advice = advised
    for i, a in enumerate(advice):
        if a is None or len(a.actions) < 2:
            continue
        needed = {n for action in a.actions for n in action.needs}
        for smaller in itertools.combinations(a.actions, len(a.actions) - 1):
            if needed - {x.code for x in smaller} and any(x.code not in needed for x in smaller):
                continue  # a set without an action another one needs is not a set advice may give
            after = trained.bundle.decide(apply(list(smaller), profile.iloc[[i]]), explain=False)
            assert not _improves(now.grade[i], now.decision[i], after)


def test_what_an_enterprise_cannot_change_is_never_advised():
    fixed = {"firm_age_years", "district_code", "industry_section", "entity_type", "registered_capital",
             "tax_months_late_24m", "court_cases_total", "sources_covered"}
    assert not fixed & actionable_features()
    for action in ACTIONS:
        assert action.when, "an action applies only where the record shows what it fixes"
        if action.amount:
            assert "{amount}" in action.zh and "{amount}" in action.en
        assert all(value in (0.0, None) for _, value in action.sets), "an action only clears what the record shows"
