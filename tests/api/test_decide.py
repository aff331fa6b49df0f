"""A bank's pre-credit question answered (:mod:`api.precredit.decide`), fast: a tiny model fitted in a second
on three features, hand-built profiles, and a SQLite database in ``tmp_path`` built by the
repository's own migrations; no trained-model fixture and no running service.

The promises: a bank gets a decision only with a valid authorisation of that enterprise, valid by
the calendar day in China, and a revoked one is refused from the next question; the authorisation
is checked before anyone learns whether the enterprise is known; a decision is in the chain before
it is answered, and its hash and its computation redo it exactly; a knock-out resting on disputed
records is relieved only when every record behind it is disputed.
"""

from __future__ import annotations

import dataclasses
import datetime as dt
import json
import re
import shutil
import types

import numpy as np
import pandas as pd
import pytest
from hypothesis import HealthCheck, given, settings, strategies as st

from api.access import clients
from api.common.errors import http_status
from api.common.metrics import DECISIONS
from api.common.refusals import Refusal
from api.db.engine import make_engine, sessions, writing
from api.db.tables import Decision, PublishedProfile
from api.precredit import decide, repository
from api.precredit.decide import (
    Asked,
    check_authorization,
    current_bundle,
    decided_rows,
    disputed_knockouts,
    mark_disputed,
    normalised_code,
    public,
    today_in_china,
    vet,
)
from api.precredit.schemas import PreCreditRequest
from api.trust import audit
from api.trust.appender import ChainAppender
from api.trust.signing import Checkpointer, Keyring, verify_receipt
from features.registry import feature_names, feature_set_version
from models.bundle import recompute
from tests.api.service_fixtures import decisions_origin

ORDER = feature_names()
FSV = feature_set_version()
UTC = dt.timezone.utc
CHINA_OFFSET = dt.timedelta(hours=8)
CODES = ["91420502R2575QTJ8H", "9142050212ADKE846Q", "91420502MN13ECUGXX", "91420502DDLJ5NPX72"]
UNPUBLISHED = "91350100M000100Y43"
AS_OF = dt.date(2026, 6, 30)
TODAY = dt.date(2026, 7, 10)
LISTINGS = ["(2025)鄂0502执恢1号", "(2025)鄂0502执2号"]


def values(**given) -> list:
    """A published profile's values (the registry's order), None where not given."""
    out = [None] * len(ORDER)
    for name, value in given.items():
        out[ORDER.index(name)] = value
    return out


GOOD = values(tax_sales_12m=3e6, tax_months_late_12m=0.0, elec_usage_12m=2e4)  # approves
POOR = values(tax_sales_12m=1e4, tax_months_late_12m=5.0, elec_usage_12m=1e3)  # declines on its grade
LISTED = values(tax_sales_12m=3e6, tax_months_late_12m=0.0, elec_usage_12m=2e4, dishonest_listed_now=1.0)


@pytest.fixture(scope="module")
def bundle():
    """A real bundle (LightGBM PD and capacity models, the default policy, a reference) fitted on
    three features of 700 made-up loans: about a second."""
    from models.train import fit_bundle

    rng = np.random.default_rng(0)

    def window(n):
        frame = pd.DataFrame({"tax_sales_12m": rng.gamma(2, 5e5, n),
                              "tax_months_late_12m": rng.integers(0, 6, n).astype(float),
                              "elec_usage_12m": rng.gamma(2, 1e4, n), "dishonest_listed_now": 0.0,
                              "penalty_serious_36m": 0.0})
        logit = -3 + 0.5 * frame["tax_months_late_12m"] - frame["tax_sales_12m"] / 1e6
        frame["defaulted"] = (rng.random(n) < 1 / (1 + np.exp(-logit))).astype(int)
        frame["capacity_12m"] = frame["tax_sales_12m"] * 0.3
        frame["grant_date"] = pd.Timestamp("2025-01-01") + pd.to_timedelta(rng.integers(0, 365, n), "D")
        return frame

    windows = {"train": window(400), "valid": window(150), "calib": window(150)}
    fitted = fit_bundle(windows, types.SimpleNamespace(as_dict=dict), columns=list(windows["train"].columns[:3]),
                        params={"n_estimators": 20})
    fitted.meta["bundle_id"] = "tiny00000001"
    return fitted


def profile(code=CODES[0], row=GOOD, as_of=AS_OF, evidence=None, disputes=None, name="某某有限公司", fsv=FSV):
    return repository.ProfileRow(code, name, as_of, fsv, list(row), evidence, disputes)


def authorization(bank_id=1, uscc=CODES[0], revoked_at=None, valid_from=dt.date(2026, 1, 1),
                  valid_until=dt.date(2026, 12, 31)):
    return types.SimpleNamespace(bank_id=bank_id, uscc=uscc, revoked_at=revoked_at, valid_from=valid_from,
                                 valid_until=valid_until)


def question(code=CODES[0], authorization_id="auth", amount=None, product=None) -> PreCreditRequest:
    return PreCreditRequest(uscc=code, authorization_id=authorization_id, requested_amount=amount, product=product)


def refused(call, *args) -> Refusal:
    with pytest.raises(Refusal) as caught:
        call(*args)
    return caught.value


def _listing(number):
    return {"number": number, "authority": "宜昌市中级人民法院", "date": "2026-01-05",
            "kind": "失信被执行人名单 dishonest-debtor listing", "severity": None, "amount_yuan": None}


def _dispute(source, record, kind="objection", feature=None, features=("dishonest_listed_now",)):
    return {"objection_id": f"o-{source}-{record}-{kind}", "kind": kind, "source": source, "record": record,
            "feature": feature, "features": [feature] if feature else list(features),
            "filed": "2026-07-01", "due": "2026-07-08"}


# ------------------------------------------------------------------ the calendar day in China

@settings(max_examples=200, deadline=None)
@given(st.datetimes(min_value=dt.datetime(1995, 1, 1), max_value=dt.datetime(2095, 1, 1),
                    timezones=st.sampled_from([UTC, dt.timezone(dt.timedelta(hours=8)),
                                               dt.timezone(dt.timedelta(hours=-5)),
                                               dt.timezone(dt.timedelta(hours=5, minutes=30))])))
def test_the_day_in_china_is_the_utc_day_eight_hours_on_at_any_instant(instant):
    assert today_in_china(instant) == (instant.astimezone(UTC).replace(tzinfo=None) + CHINA_OFFSET).date()


def test_the_day_in_china_is_todays_by_default():
    before = (dt.datetime.now(UTC) + CHINA_OFFSET).date()
    found = today_in_china()
    after = (dt.datetime.now(UTC) + CHINA_OFFSET).date()
    assert found in (before, after)


@settings(max_examples=200, deadline=None)
@given(instant=st.datetimes(min_value=dt.datetime(2025, 12, 1), max_value=dt.datetime(2027, 2, 1), timezones=st.just(UTC)),
       start=st.dates(min_value=dt.date(2026, 1, 1), max_value=dt.date(2026, 12, 31)),
       length=st.integers(min_value=0, max_value=40))
def test_an_authorisation_answers_on_exactly_the_china_days_it_covers(instant, start, length):
    """Valid from its first China day to its last, both included, whatever the UTC day says."""
    record = authorization(valid_from=start, valid_until=start + dt.timedelta(days=length))
    china_day = (instant.replace(tzinfo=None) + CHINA_OFFSET).date()
    today = today_in_china(instant)
    if record.valid_from <= china_day <= record.valid_until:
        check_authorization(record, 1, CODES[0], today)
    else:
        error = refused(check_authorization, record, 1, CODES[0], today)
        expected = "AUTHORIZATION_EXPIRED" if china_day > record.valid_until else "AUTHORIZATION_NOT_YET_VALID"
        assert (http_status(error), error.code) == (403, expected)


def test_every_way_an_authorisation_fails_is_a_403_with_its_own_code():
    day = dt.date(2026, 7, 1)
    cases = {
        "AUTHORIZATION_NOT_FOUND": None,
        "AUTHORIZATION_OTHER_BANK": authorization(bank_id=2),
        "AUTHORIZATION_USCC_MISMATCH": authorization(uscc=CODES[1]),
        "AUTHORIZATION_REVOKED": authorization(revoked_at="2026-06-30T01:00:00.000000Z"),
        "AUTHORIZATION_EXPIRED": authorization(valid_until=day - dt.timedelta(days=1)),
        "AUTHORIZATION_NOT_YET_VALID": authorization(valid_from=day + dt.timedelta(days=1)),
    }
    for code, record in cases.items():
        error = refused(check_authorization, record, 1, CODES[0], day)
        assert (http_status(error), error.code) == (403, code)
        assert error.message and error.message_zh
    check_authorization(authorization(valid_from=day, valid_until=day), 1, CODES[0], day)  # its only day


def test_another_banks_authorisation_tells_nothing_about_itself():
    """Another bank's authorisation is refused as another bank's, whatever its enterprise, state or dates."""
    day = dt.date(2026, 7, 1)
    for given_to, asking in ((2, 1), (1, 2), (7, 30)):  # a bank with a lower id or a higher one
        for record in (authorization(bank_id=given_to), authorization(bank_id=given_to, uscc=CODES[1]),
                       authorization(bank_id=given_to, revoked_at="2026-06-30"),
                       authorization(bank_id=given_to, valid_until=dt.date(2026, 1, 2))):
            assert refused(check_authorization, record, asking, CODES[0], day).code == "AUTHORIZATION_OTHER_BANK"
    # and an authorisation for another enterprise says only that, revoked or expired
    for named, asked in ((CODES[1], CODES[0]), (CODES[0], CODES[1])):  # whichever code sorts first
        for record in (authorization(uscc=named), authorization(uscc=named, revoked_at="2026-06-30"),
                       authorization(uscc=named, valid_until=dt.date(2026, 1, 2))):
            assert refused(check_authorization, record, 1, asked, day).code == "AUTHORIZATION_USCC_MISMATCH"
    assert refused(check_authorization, authorization(revoked_at="2026-06-30", valid_until=dt.date(2026, 1, 2)),
                   1, CODES[0], day).code == "AUTHORIZATION_REVOKED"


# ------------------------------------------------------------------ codes, the model, the checks' order

def test_a_code_is_normalised_before_it_is_used_and_a_broken_one_is_a_422_naming_its_rule():
    assert normalised_code(" ９１４２０５０２ｒ２５７５ｑｔｊ８ｈ ") == CODES[0]
    assert normalised_code(CODES[1].lower()) == CODES[1]
    error = refused(normalised_code, "91420500ma4abcde1x")
    assert (http_status(error), error.code) == (422, "INVALID_USCC")
    assert "organisation_check" in error.message and "'91420500ma4abcde1x'" in error.message
    assert "organisation_check" in error.message_zh


def test_without_a_champion_a_question_is_a_503_and_with_one_the_response_names_it(bundle):
    error = refused(current_bundle, None, None)
    assert (http_status(error), error.code) == (503, "MODEL_UNAVAILABLE")
    assert current_bundle(bundle) is bundle
    request = types.SimpleNamespace(state=types.SimpleNamespace())
    assert current_bundle(bundle, request) is bundle and request.state.model_version == bundle.version == "tiny00000001"


def test_the_authorisation_is_checked_before_anyone_learns_whether_the_enterprise_is_known(bundle):
    request = question()
    for record, code in ((None, "AUTHORIZATION_NOT_FOUND"), (authorization(bank_id=2), "AUTHORIZATION_OTHER_BANK"),
                         (authorization(revoked_at="2026-07-01"), "AUTHORIZATION_REVOKED")):
        for known in (None, profile()):  # the same refusal whether or not a profile is published
            error = refused(vet, bundle, 1, 0, request, CODES[0], record, known, TODAY)
            assert (http_status(error), error.code) == (403, code)
    error = refused(vet, bundle, 1, 0, request, CODES[0], authorization(), None, TODAY)
    assert (http_status(error), error.code) == (404, "UNKNOWN_ENTERPRISE") and CODES[0] in error.message
    asked = vet(bundle, 1, 3, request, CODES[0], authorization(), profile(), TODAY)
    assert (asked.index, asked.request, asked.uscc, asked.profile) == (3, request, CODES[0], profile())


def test_a_profile_of_another_feature_set_is_never_decided_on(bundle):
    for other in ("000000000000", "ffffffffffff", FSV[:-1]):  # whichever way it sorts against the model's
        assert other != FSV
        error = refused(vet, bundle, 1, 0, question(), CODES[0], authorization(), profile(fsv=other), TODAY)
        assert (http_status(error), error.code) == (503, "PROFILE_MODEL_MISMATCH")
        assert other in error.message and FSV in error.message


def test_a_profile_older_than_the_policy_allows_is_never_decided_on(bundle):
    limit = bundle.policy.max_profile_age_days
    assert limit == 92
    at_limit = profile(as_of=TODAY - dt.timedelta(days=limit))
    assert vet(bundle, 1, 0, question(), CODES[0], authorization(), at_limit, TODAY).profile is at_limit
    stale = profile(as_of=TODAY - dt.timedelta(days=limit + 1))
    error = refused(vet, bundle, 1, 0, question(), CODES[0], authorization(), stale, TODAY)
    assert (http_status(error), error.code) == (503, "PROFILE_STALE") and f"{limit + 1} days" in error.message
    # a policy that sets no age decides on a profile of any age
    ageless = dataclasses.replace(bundle, policy=dataclasses.replace(bundle.policy, max_profile_age_days=None))
    old = profile(as_of=TODAY - dt.timedelta(days=3650))
    assert vet(ageless, 1, 0, question(), CODES[0], authorization(), old, TODAY).profile is old


# ------------------------------------------------------------------ decisions: the rows, the hash, the computation

def _asked(*items) -> list[Asked]:
    return [Asked(i, request, request.uscc, row) for i, (request, row) in enumerate(items)]


def test_a_decisions_row_records_the_question_the_versions_and_the_inputs(bundle):
    asked = _asked((question(CODES[0], "auth-0", 120_000, "科创贷"), profile(CODES[0], GOOD)),
                   (question(CODES[1], "auth-1"), profile(CODES[1], POOR, as_of=dt.date(2026, 6, 1))))
    rows, reasons, _ = decided_rows(bundle, 7, asked, ["req-0", "req-1"])
    first, second = rows
    assert (first["request_id"], first["client_id"], first["uscc"], first["authorization_id"], first["product"],
            first["requested_amount"]) == ("req-0", 7, CODES[0], "auth-0", "科创贷", 120_000)
    assert (second["request_id"], second["uscc"], second["authorization_id"], second["product"],
            second["requested_amount"]) == ("req-1", CODES[1], "auth-1", None, None)
    for row in rows:
        assert (row["model_version"], row["policy_version"], row["feature_set_version"]) == \
            ("tiny00000001", bundle.policy.version, FSV)
    assert (first["profile_as_of"], second["profile_as_of"]) == ("2026-06-30", "2026-06-01")
    assert (first["decision"], second["decision"]) == ("approve", "decline")
    assert 0 < first["limit_yuan"] <= 120_000 and second["limit_yuan"] == 0
    for row, reason, item in zip(rows, reasons, asked):
        assert reason["inputs"] == item.profile.values  # the whole published vector decided on
        assert json.loads(row["reasons"]) == json.loads(json.dumps(reason, default=float))
        assert isinstance(row["pd"], float) and isinstance(row["score"], float) and isinstance(row["limit_yuan"], int)
    assert decided_rows(bundle, 7, []) == ([], [], [])


def test_the_chain_keeps_a_decisions_reasons_in_one_canonical_spelling(bundle):
    """Sorted keys, characters as themselves: whoever re-serialises the reasons a decision shows
    gets the very text its hash covers."""
    asked = _asked((question(CODES[0]), profile(CODES[0], LISTED, evidence={"dishonest_listed_now": [_listing("x")]})))
    [row], [reason], _ = decided_rows(bundle, 1, asked)
    assert row["reasons"] == json.dumps(json.loads(row["reasons"]), ensure_ascii=False, sort_keys=True)
    assert "失信被执行人" in row["reasons"]


def test_a_decisions_numbers_carry_no_negative_zero(bundle):
    """A PD of 0.9984766 scores about -0.02, which NumPy rounds to -0.0: the row says 0.0 (some
    databases give back no negative zero, and the answer must be the row the chain hashed)."""
    pd_ = 0.9984766
    score = bundle.policy.points(np.array([pd_]))
    assert score[0] == 0.0 and np.signbit(score[0])  # the model's arithmetic does give -0.0 here
    _, [real], _ = decided_rows(bundle, 1, _asked((question(), profile())))  # reasons a decision has
    decisions = types.SimpleNamespace(pd=np.array([pd_]), score=score, grade=np.array(["E"]),
                                      decision=np.array(["decline"]), limit=np.array([0]),
                                      reasons=lambda i: json.loads(json.dumps(real)))
    stub = types.SimpleNamespace(version="stub", policy=bundle.policy, decide_rows=lambda *a, **k: decisions)
    [row], *_ = decided_rows(stub, 1, _asked((question(), profile())))
    assert row["score"] == 0.0 and not np.signbit(row["score"]) and row["pd"] == pd_


def test_without_a_request_id_each_decision_gets_its_own(bundle):
    asked = _asked(*[(question(c), profile(c)) for c in CODES[:3]])
    ids = [row["request_id"] for row in decided_rows(bundle, 1, asked)[0]]
    assert len(set(ids)) == 3
    assert all(re.fullmatch(r"[0-9a-f]{8}-[0-9a-f]{4}-4[0-9a-f]{3}-[0-9a-f]{4}-[0-9a-f]{12}", i) for i in ids)


def _redo(row: dict) -> dict:
    return {k: row[k] for k in ("pd", "score", "grade", "decision", "limit_yuan")}


@settings(max_examples=25, deadline=None, suppress_health_check=[HealthCheck.function_scoped_fixture])
@given(sales=st.one_of(st.none(), st.floats(0, 2e7)), late=st.one_of(st.none(), st.integers(0, 12)),
       power=st.one_of(st.none(), st.floats(0, 1e6)), listed=st.sampled_from([None, 0.0, 1.0]),
       penalties=st.sampled_from([None, 0.0, 2.0]), amount=st.one_of(st.none(), st.integers(0, 5_000_000)))
def test_the_computation_redoes_every_decision_exactly(bundle, sales, late, power, listed, penalties, amount):
    row_values = values(tax_sales_12m=sales, tax_months_late_12m=None if late is None else float(late),
                        elec_usage_12m=power, dishonest_listed_now=listed, penalty_serious_36m=penalties)
    [row], [reason], _ = decided_rows(bundle, 1, _asked((question(amount=amount), profile(row=row_values))))
    computation = json.loads(row["reasons"])["computation"]
    assert recompute(computation) == _redo(row)
    assert computation["requested_yuan"] == (None if amount is None else float(amount))


# every field of a decision's row that comes from the question, the bank, the model or the profile
CHANGES = {
    "request_id": lambda q, p, b: ("req-other", q, p, b),
    "bank": lambda q, p, b: ("req", q, p, b + 1),
    "authorization": lambda q, p, b: ("req", q.model_copy(update={"authorization_id": "auth-other"}), p, b),
    "product": lambda q, p, b: ("req", q.model_copy(update={"product": "另一产品"}), p, b),
    "amount": lambda q, p, b: ("req", q.model_copy(update={"requested_amount": (q.requested_amount or 0) + 10_000}), p, b),
    "as_of": lambda q, p, b: ("req", q, dataclasses.replace(p, as_of=p.as_of - dt.timedelta(days=1)), b),
    "feature_set": lambda q, p, b: ("req", q, dataclasses.replace(p, feature_set_version="abcdefabcdef"), b),
    "uscc": lambda q, p, b: ("req", q.model_copy(update={"uscc": CODES[1]}), dataclasses.replace(p, uscc=CODES[1]), b),
}


@settings(max_examples=40, deadline=None, suppress_health_check=[HealthCheck.function_scoped_fixture])
@given(change=st.one_of(st.sampled_from(sorted(CHANGES)), st.integers(0, len(ORDER) - 1)),
       amount=st.one_of(st.none(), st.integers(0, 10**7)), new=st.floats(-1e6, 1e6, allow_nan=False))
def test_any_change_to_a_decisions_input_changes_its_hash(bundle, change, amount, new):
    """Any input of a decision (a value of any published feature, read by the model or not; the
    question; the bank; the profile's date and feature set) changes the chain hash of its row."""
    base = question(CODES[0], "auth", amount, "科创贷")
    row_values = list(GOOD)

    def hashed(request_id, request, row_profile, bank_id):
        asked = [Asked(0, request, request.uscc, row_profile)]
        [row], *_ = decided_rows(bundle, bank_id, asked, [request_id])
        return audit.chain_hash(audit.GENESIS, {**row, "seq": 1, "created_at": "2026-07-10T00:00:00.000000Z"})

    original = hashed("req", base, profile(row=row_values), 1)
    assert original == hashed("req", base, profile(row=row_values), 1)  # the same question, the same hash
    if isinstance(change, int):
        if row_values[change] == new or ORDER[change] in ("dishonest_listed_now", "penalty_serious_36m"):
            new = (row_values[change] or 0.0) + 1.5
        changed = list(row_values)
        changed[change] = new
        assert hashed("req", base, profile(row=changed), 1) != original, ORDER[change]
    else:
        assert hashed(*CHANGES[change](base, profile(row=row_values), 1)) != original, change


# ------------------------------------------------------------------ knock-outs: evidence and disputes

def test_a_knock_out_shows_the_records_it_rests_on(bundle):
    evidence = {"dishonest_listed_now": [_listing(n) for n in LISTINGS]}
    asked = _asked((question(CODES[0]), profile(CODES[0], LISTED, evidence=evidence)),
                   (question(CODES[1]), profile(CODES[1], LISTED)))
    rows, reasons, _ = decided_rows(bundle, 1, asked)
    shown, unshown = (r["knockouts"] for r in reasons)
    assert [k["code"] for k in shown] == ["KO01"] and shown[0]["evidence"] == evidence["dishonest_listed_now"]
    assert [k["code"] for k in unshown] == ["KO01"] and unshown[0]["evidence"] == []
    assert [row["decision"] for row in rows] == ["decline", "decline"]
    assert json.loads(rows[0]["reasons"])["knockouts"][0]["evidence"] == evidence["dishonest_listed_now"]


def test_a_knock_out_is_relieved_in_a_decision_only_when_every_record_behind_it_is_disputed(bundle):
    evidence = {"dishonest_listed_now": [_listing(n) for n in LISTINGS]}

    def case(number, kind="objection", source="dishonest_debtors"):
        return _dispute(source, {"case_no": number}, kind)

    cases = {
        "all": [case(n) for n in LISTINGS],
        "one of two": [case(LISTINGS[0])],
        "none": None,
        "repair notices": [case(n, "repair") for n in LISTINGS],
        "another source": [case(LISTINGS[0]), case(LISTINGS[1], source="court_executions")],
        "the feature itself": [_dispute(None, None, feature="dishonest_listed_now")],
    }
    asked = _asked(*[(question(CODES[0]), profile(CODES[0], LISTED, evidence=evidence, disputes=d))
                     for d in cases.values()])
    rows, reasons, _ = decided_rows(bundle, 1, asked)
    outcome = {name: (row["decision"], reason["knockouts"][0].get("under_objection", False))
               for name, row, reason in zip(cases, rows, reasons)}
    assert outcome == {"all": ("refer", True), "one of two": ("decline", False), "none": ("decline", False),
                       "repair notices": ("decline", False), "another source": ("decline", False),
                       "the feature itself": ("refer", True)}
    for row in rows:  # the relieved decision's computation still redoes it
        assert recompute(json.loads(row["reasons"])["computation"]) == _redo(row)
    # alone, with nobody in the batch disputing anything, the listing declines
    [alone], *_ = decided_rows(bundle, 1, _asked((question(CODES[0]), profile(CODES[0], LISTED, evidence=evidence))))
    assert alone["decision"] == "decline"


def test_a_knock_out_without_records_is_not_relieved_by_objections_to_other_records():
    """A knock-out whose evidence shows no record is relieved only by an objection to the feature itself."""
    listed = profile(evidence={"dishonest_listed_now": [_listing(LISTINGS[0])], "penalty_serious_36m": []},
                     disputes=[_dispute("dishonest_debtors", {"case_no": LISTINGS[0]}),
                               _dispute("administrative_penalties", {"decision_no": "宜市监罚〔2025〕11号"})])
    assert disputed_knockouts(listed) == {"dishonest_listed_now"}
    assert disputed_knockouts(profile(evidence=None, disputes=[_dispute("dishonest_debtors", {"case_no": "x"})])) == set()
    assert disputed_knockouts(profile(evidence={"dishonest_listed_now": [_listing("x")]}, disputes=None)) == set()
    penalty = _dispute(None, None, feature="penalty_serious_36m")
    assert disputed_knockouts(profile(evidence=None, disputes=[penalty])) == {"penalty_serious_36m"}
    # a repair notice against the feature itself disputes nothing either
    repair = {**penalty, "kind": "repair"}
    assert disputed_knockouts(profile(evidence=None, disputes=[repair])) == set()


def test_what_is_under_objection_is_said_in_the_reasons():
    objection = _dispute("tax_filings", {"period": "2026-05"}, features=("tax_sales_12m",))
    repair = {**_dispute("electricity", {"period": "2026-04"}, kind="repair", features=("elec_usage_12m",)),
              "filed": "2026-06-20", "due": "2026-07-20"}
    reasons = {"adverse": [{"feature": "tax_sales_12m"}, {"feature": "elec_usage_12m"},
                           {"feature": None, "features": ["tax_months_late_12m", "tax_sales_12m"]}],
               "positive": [{"feature": "tax_months_late_12m"}, {"feature": None, "features": ["water_usage_12m"]}]}
    mark_disputed(reasons, [objection, repair])
    assert [i.get("under_objection", False) for i in reasons["adverse"]] == [True, False, True]
    assert [i.get("under_objection", False) for i in reasons["positive"]] == [False, False]
    said_objection, said_repair = reasons["under_objection"]
    assert {k: said_objection[k] for k in objection} == objection and {k: said_repair[k] for k in repair} == repair
    assert said_objection["zh"] == "异议处理中（2026-07-01 提出，2026-07-08 前答复）"
    assert said_objection["en"] == "an objection filed 2026-07-01 is being checked by the department (due 2026-07-08)"
    assert said_repair["zh"] == "信用修复申请处理中（2026-06-20 提出，2026-07-20 前答复）"
    assert said_repair["en"] == ("a credit repair notice filed 2026-06-20 is being checked by the department "
                                 "(due 2026-07-20)")
    nothing = {"adverse": [{"feature": "tax_sales_12m"}]}
    mark_disputed(nothing, [])
    assert nothing == {"adverse": [{"feature": "tax_sales_12m"}], "under_objection": []}


def test_a_decision_on_a_disputed_profile_says_so_and_an_undisputed_one_does_not(bundle):
    objection = _dispute("tax_filings", {"period": "2026-05"}, features=("tax_sales_12m",))
    asked = _asked((question(CODES[0]), profile(CODES[0], POOR, disputes=[objection])),
                   (question(CODES[1]), profile(CODES[1], POOR)))
    _, (disputed, plain), _ = decided_rows(bundle, 1, asked)
    assert [d["objection_id"] for d in disputed["under_objection"]] == [objection["objection_id"]]
    named = [i for i in disputed["adverse"] + disputed["positive"] if i.get("feature") == "tax_sales_12m"]
    assert named and all(i["under_objection"] for i in named)
    assert "under_objection" not in plain
    assert not any(i.get("under_objection") for i in plain["adverse"] + plain["positive"])


# ------------------------------------------------------------------ answering: the chain, the receipt, the order

def test_every_decisions_reasons_are_the_type_the_model_declares_and_the_answer_shows_no_other_field(bundle):
    """The reasons are one typed model from the model to the chain (models.explain.DecisionReasons):
    what the bundle states, what the service adds (evidence, disputes, inputs) and what the chain
    stores all validate against it, nothing undeclared among them; the answer's schema
    (api.precredit.schemas) shows only declared fields."""
    from pydantic import ConfigDict, TypeAdapter, ValidationError

    from api.precredit import schemas
    from models import explain

    declared = TypeAdapter(list[explain.DecisionReasons], config=ConfigDict(extra="forbid"))
    objection = _dispute("tax_filings", {"period": "2026-05"}, features=("tax_sales_12m",))
    evidence = {"dishonest_listed_now": [_listing(LISTINGS[0])]}
    asked = _asked((question(CODES[0]), profile(CODES[0], GOOD)),
                   (question(CODES[1]), profile(CODES[1], POOR, disputes=[objection])),
                   (question(CODES[2]), profile(CODES[2], LISTED, evidence=evidence,
                                                disputes=[_dispute("dishonest_debtors", {"case_no": LISTINGS[0]})])),
                   (question(CODES[3]), profile(CODES[3], values(tax_months_late_12m=4.0))))  # absences
    rows, reasons, _ = decided_rows(bundle, 1, asked)
    kinds = {item["kind"] for r in reasons for item in r["adverse"] + r["positive"]}
    assert kinds == {"behaviour", "absence"} and any(r["knockouts"] for r in reasons)
    assert any("under_objection" in r for r in reasons)
    declared.validate_python(reasons)
    declared.validate_python([json.loads(row["reasons"]) for row in rows])
    stray = json.loads(rows[0]["reasons"])
    stray["adverse" if stray["adverse"] else "positive"][0]["note"] = "not declared"
    with pytest.raises(ValidationError, match="note"):
        declared.validate_python([stray])

    def keys(typed) -> set[str]:
        return set(typed.__required_keys__ | typed.__optional_keys__)

    for shown, typed in [(schemas.Reasons, explain.DecisionReasons), (schemas.Reason, explain.StatedReason),
                         (schemas.Knockout, explain.KnockoutReason), (schemas.Right, explain.StatedRight),
                         (schemas.Reference, explain.ReferenceSummary),
                         (schemas.ReferenceGroup, explain.ReferenceGroup)]:
        assert set(shown.model_fields) <= keys(typed), (shown.__name__, set(shown.model_fields) - keys(typed))
    for reason in reasons:  # and the answer's schema accepts each as it is
        schemas.Reasons.model_validate(reason)


@pytest.fixture
def platform(schema, tmp_path):
    """A database with two banks, one authorisation per published enterprise for the first bank
    (and one for the second), and a chain appender that signs receipts."""
    shutil.copyfile(schema, tmp_path / "xyd.db")
    engine = make_engine(f"sqlite:///{tmp_path}/xyd.db")
    factory = sessions(engine)
    today = today_in_china()
    ids = {}
    with writing(factory) as session:
        bank, other = (clients.add_client(session, name, "bank")[0].id for name in ("甲银行", "乙银行"))
        for i, (code, row) in enumerate(zip(CODES[:3], (GOOD, POOR, LISTED))):
            session.add(PublishedProfile(uscc=code, name=f"企业{i}", as_of=today - dt.timedelta(days=10),
                                         feature_set_version=FSV, features=json.dumps(row),
                                         published_at=repository.now_iso()))
        add = repository.add_authorization
        for code in CODES[:3]:
            ids[code] = add(session, code, bank, "流动资金贷款", "all", today, today, "2026.1", "0" * 64).id
        ids["unpublished"] = add(session, UNPUBLISHED, bank, "p", "all", today, today, "2026.1", "0" * 64).id
        ids["other bank"] = add(session, CODES[0], other, "p", "all", today, today, "2026.1", "0" * 64).id
        ids["expired"] = add(session, CODES[1], bank, "p", "all", today - dt.timedelta(days=30),
                             today - dt.timedelta(days=1), "2026.1", "0" * 64).id
    keyring = Keyring(tmp_path / "keys")
    appender = ChainAppender(engine, Checkpointer(keyring.signer(), tmp_path / "checkpoints.jsonl",
                                                  every_decisions=10**9, every_seconds=10**9,
                                                  origin=decisions_origin(engine)))
    yield types.SimpleNamespace(engine=engine, factory=factory, bank=bank, other=other, ids=ids, appender=appender,
                                keys=keyring.public_keys())
    appender.close()
    engine.dispose()


def _chain(platform) -> list[Decision]:
    with platform.factory() as session:
        return list(session.query(Decision).order_by(Decision.seq))


def test_a_batch_is_answered_in_order_each_question_its_decision_or_its_own_error(bundle, platform):
    ids = platform.ids
    questions = [question(CODES[0], ids[CODES[0]], 50_000, "科创贷"), question("91420500ma4abcde1x", ids[CODES[0]]),
                 question(CODES[0].lower(), ids["other bank"]), question(UNPUBLISHED, ids["unpublished"]),
                 question(CODES[1], ids["expired"]), question(CODES[1], ids[CODES[1]]),
                 question(CODES[2], "no-such-id"), question(CODES[2], ids[CODES[2]])]
    before = {d: DECISIONS.labels(d, bundle.version)._value.get() for d in ("approve", "decline")}
    results = decide.answer(platform.engine, platform.appender, bundle, platform.bank, questions)
    errors = {i: (http_status(r), r.code) for i, r in enumerate(results) if isinstance(r, Refusal)}
    assert errors == {1: (422, "INVALID_USCC"), 2: (403, "AUTHORIZATION_OTHER_BANK"), 3: (404, "UNKNOWN_ENTERPRISE"),
                      4: (403, "AUTHORIZATION_EXPIRED"), 6: (403, "AUTHORIZATION_NOT_FOUND")}
    decided = [results[i] for i in (0, 5, 7)]
    assert [(d.uscc, d.name, d.decision) for d in decided] == [(CODES[0], "企业0", "approve"),
                                                              (CODES[1], "企业1", "decline"),
                                                              (CODES[2], "企业2", "decline")]
    assert [d.authorization_id for d in decided] == [ids[c] for c in CODES[:3]]
    assert {d.client_id for d in decided} == {platform.bank}
    assert (decided[0].requested_amount, decided[0].product, decided[1].requested_amount) == (50_000, "科创贷", None)
    assert len({d.request_id for d in decided}) == 3
    chain = _chain(platform)  # exactly the decisions answered, in the chain
    assert [(c.request_id, c.hash) for c in chain] == [(d.request_id, d.hash) for d in decided]
    after = {d: DECISIONS.labels(d, bundle.version)._value.get() for d in ("approve", "decline")}
    assert (after["approve"] - before["approve"], after["decline"] - before["decline"]) == (1, 2)


def test_a_decision_is_in_the_chain_before_it_is_answered_and_its_hash_and_computation_redo_it(bundle, platform):
    code = CODES[0]
    [first] = decide.answer(platform.engine, platform.appender, bundle, platform.bank,
                            [question(code, platform.ids[code], 80_000)], ["http-request-1"])
    answering = decide.start_answer(platform.engine, platform.appender, bundle, platform.bank,
                                    [question(code, platform.ids[code])], ["http-request-2"])
    answering.written.result()  # written before anything is answered
    [second] = answering.finish()
    assert (first.request_id, second.request_id) == ("http-request-1", "http-request-2")
    stored = _chain(platform)
    assert [s.request_id for s in stored] == ["http-request-1", "http-request-2"]
    previous = audit.GENESIS
    for answer, row in zip((first, second), stored):
        content = {k: getattr(row, k) for k in audit.HASHED}
        assert row.prev_hash == previous and answer.hash == row.hash == audit.chain_hash(previous, content)
        previous = row.hash
        assert (answer.pd, answer.score, answer.grade, answer.decision, answer.limit_yuan) == \
            (row.pd, row.score, row.grade, row.decision, row.limit_yuan)
        # the computation the chain keeps with it (the regulator's page prints it) redoes the answer
        assert recompute(json.loads(row.reasons)["computation"]) == \
            {"pd": answer.pd, "score": answer.score, "grade": answer.grade, "decision": answer.decision,
             "limit_yuan": answer.limit_yuan}
        signed = verify_receipt(answer.receipt.model_dump(), platform.keys, answer.model_dump(mode="json"))
        assert signed["request_id"] == answer.request_id and signed["seq"] == row.seq
        assert answer.versions.model_dump(mode="json") == \
            {"model_version": "tiny00000001", "policy_version": bundle.policy.version, "feature_set_version": FSV,
             "profile_as_of": row.profile_as_of}
        assert answer.decided_at == row.created_at
    with platform.factory() as session:
        assert audit.verify(session).ok
    assert first.limit_yuan <= 80_000


def test_a_decision_read_back_carries_its_stored_reasons_and_no_receipt(bundle, platform):
    code = CODES[0]
    [answered] = decide.answer(platform.engine, platform.appender, bundle, platform.bank,
                               [question(code, platform.ids[code], None, "科创贷")])
    [row] = _chain(platform)
    read_back = public(row)
    assert read_back.receipt is None and answered.receipt is not None
    # the name shown too: the chain keeps it with the decision (format 2)
    assert read_back.model_dump(exclude={"receipt"}) == answered.model_dump(exclude={"receipt"})
    assert row.name and read_back.name == row.name == answered.name


def test_revoking_refuses_the_next_question(bundle, platform):
    code = CODES[0]
    ask = [question(code, platform.ids[code])]
    [answered] = decide.answer(platform.engine, platform.appender, bundle, platform.bank, ask)
    assert answered.decision == "approve"
    with writing(platform.factory) as session:
        repository.revoke_authorization(session, platform.ids[code])
    [next_one] = decide.answer(platform.engine, platform.appender, bundle, platform.bank, ask)
    assert isinstance(next_one, Refusal) and (http_status(next_one), next_one.code) == (403, "AUTHORIZATION_REVOKED")
    assert [d.request_id for d in _chain(platform)] == [answered.request_id]


def test_questions_that_all_fail_their_checks_write_nothing(bundle, platform):
    results = decide.answer(platform.engine, platform.appender, bundle, platform.bank,
                            [question("bad", "x"), question(CODES[1], platform.ids["expired"])])
    assert [(http_status(r), r.code) for r in results] == [(422, "INVALID_USCC"), (403, "AUTHORIZATION_EXPIRED")]
    results = decide.answer(platform.engine, platform.appender, bundle, platform.bank, [question("bad", "x")])
    assert [r.code for r in results] == ["INVALID_USCC"]
    assert _chain(platform) == []
