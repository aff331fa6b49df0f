"""Counterfactual advice on the model city's pre-credit list: lawful, minimal, and true when re-scored."""

from __future__ import annotations

import datetime as dt
import itertools

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
    allows = []
    for i in wanting:
        row = profile.iloc[[i]]
        everything = [a for a in ACTIONS if applicable(a, row)[0]]
        if everything and _acceptable(now.grade[i], now.decision[i],
                                      trained.bundle.decide(apply(everything, row, trained.bundle), explain=False)):
            allows.append(i)
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
    blocking = 0
    for i in knocked:
        row = profile.iloc[[i]]
        everything = [a for a in ACTIONS if applicable(a, row)[0]]
        rest = [a for a in everything if a.code not in lifting]
        if len(rest) == len(everything):
            continue  # no lawful action lifts this knock-out
        best = bundle.decide(apply(everything, row, bundle), explain=False).decision[0]
        without = bundle.decide(apply(rest, row, bundle), explain=False).decision[0] if rest else now.decision[i]
        if SEVERITY[best] < SEVERITY[without] and best != "decline":
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
    for i in thin:
        row = profile.iloc[[i]]
        after = bundle.decide(apply([share], row, bundle), explain=False)
        assert pd.to_numeric(apply([share], row, bundle)["has_tax_filings"]).iloc[0] == 1
        c = counsel[i]
        if _acceptable(now.grade[i], now.decision[i], after):
            helped += 1
            assert c.advice is not None, i  # the data alone helps: advice is given (perhaps with more)
        if c.advice is not None and "DA01" in c.advice.codes:
            assert "同类获批企业的中位水平" in c.advice.zh and "typical approved borrower" in c.advice.en
            assert c.advice.supplied == ["tax_filings"]
        elif c.advice is None:
            assert c.why_en, i
        sharing = [a for a in ACTIONS if a.supplies and applicable(a, row)[0]]
        judged = bundle.decide(apply(sharing, row, bundle), explain=False)
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
