"""The records behind a knock-out, read under the same rules as the features they stand for."""

from __future__ import annotations

import datetime as dt

from features.lake import Lake
from features.profile.build import build
from features.profile.evidence import court_of, evidence_for, knockout_evidence

AS_OF = dt.date(2026, 6, 30)


def test_every_counted_listing_and_serious_penalty_has_its_record_and_no_other(model_home):
    """On every enterprise of the city: a listing is shown exactly when the profile says the
    enterprise is on the list now, and as many serious penalties as the profile counts, each with
    its number, authority and a date no later than the profile's day."""
    profile = build(model_home, AS_OF).profile
    evidence = evidence_for(Lake(model_home), AS_OF, profile)
    listed = profile.set_index("uscc")["dishonest_listed_now"]
    serious = profile.set_index("uscc")["penalty_serious_36m"]
    assert (listed == 1).sum() > 0 and (serious > 0).sum() > 0  # the city has both
    for code in profile["uscc"]:
        records = evidence.get(code, {})
        assert bool(records.get("dishonest_listed_now")) == (listed[code] == 1), code
        assert len(records.get("penalty_serious_36m", [])) == serious[code], code
        for items in records.values():
            for record in items:
                assert record["number"] and record["authority"] and record["date"] <= AS_OF.isoformat()
    penalties = [r for e in evidence.values() for r in e.get("penalty_serious_36m", [])]
    assert all(r["severity"] in ("serious", "severe") and "信用修复" in r["repair"] for r in penalties)
    listings = [r for e in evidence.values() for r in e.get("dishonest_listed_now", [])]
    assert all(r["authority"].endswith("人民法院") for r in listings)


def test_evidence_is_point_in_time(model_home):
    """A year earlier, the enterprises listed or penalised now show exactly what the profile of
    that day counts: listings removed since are shown, later ones are not."""
    earlier = dt.date(2025, 6, 30)
    now = build(model_home, AS_OF).profile
    then = build(model_home, earlier).profile.set_index("uscc")
    codes = [c for c in now.loc[(now["penalty_serious_36m"] > 0) | (now["dishonest_listed_now"] > 0), "uscc"]
             if c in then.index]
    shown = knockout_evidence(Lake(model_home), earlier, codes)
    assert codes
    for code in codes:
        records = shown.get(code, {})
        assert bool(records.get("dishonest_listed_now")) == (then.loc[code, "dishonest_listed_now"] == 1), code
        assert len(records.get("penalty_serious_36m", [])) == then.loc[code, "penalty_serious_36m"], code
        for items in records.values():
            assert all(r["date"] <= earlier.isoformat() for r in items)
    assert knockout_evidence(Lake(model_home), AS_OF, []) == {}


def test_a_case_number_names_its_court():
    assert court_of("(2023)鄂0581执1000700号") == "宜都市人民法院"
    assert court_of("(2024)鄂05执12号") == "宜昌市中级人民法院"
    assert court_of("not a case") == ""
