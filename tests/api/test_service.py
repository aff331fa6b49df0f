"""The bank-facing service over HTTP, on SQLite and PostgreSQL: answers, the auth matrix, bank
isolation, authorisations, errors in one shape, the audit chain, model reload, the report."""

from __future__ import annotations

import datetime as dt
import html
import json
from html.parser import HTMLParser

import pytest
from sqlalchemy import create_engine, text

from api.db.engine import make_engine, sessions
from api.precredit import repository
from api.trust import audit
from features.registry import BY_NAME, feature_names
from tests.api.service_fixtures import (
    AS_OF,
    POSTGRES_ADMIN,
    UNKNOWN,
    make_service,
    postgres_database,
    terminate_connections,
)
from tests.golden import page_text

ERROR_KEYS = {"code", "message", "message_zh", "request_id"}


def error_of(response, status: int, code: str) -> dict:
    assert response.status_code == status, response.text
    body = response.json()
    assert set(body) == ERROR_KEYS and body["code"] == code and body["message_zh"], body
    assert body["request_id"] == response.headers["x-request-id"]
    return body


def test_a_bank_gets_pd_grade_decision_limit_reasons_and_versions(service):
    response = service.ask(requested_amount=300_000, product="税易贷")
    assert response.status_code == 200, response.text
    body = response.json()
    assert body["uscc"] == service.codes[0] and 0 < body["pd"] < 1 and body["grade"] in "ABCDE"
    assert body["decision"] in ("approve", "refer", "decline") and 0 <= body["limit_yuan"] <= 300_000
    assert body["request_id"] == response.headers["x-request-id"]
    assert body["versions"]["model_version"] == response.headers["x-model-version"]
    assert body["versions"]["profile_as_of"] == "2026-06-30" and body["versions"]["policy_version"]
    reasons = body["reasons"]
    shown = sum(r["contribution"] for r in reasons["adverse"] + reasons["positive"])
    assert reasons["base_value"] + shown == pytest.approx(reasons["margin"], abs=abs(reasons["margin"]) + 5)
    first = reasons["adverse"][0]
    assert first["zh"] == BY_NAME[first["feature"]].zh and first["contribution"] > 0
    again = service.client.get(f"/v1/decisions/{body['request_id']}", headers=service.headers("bank"))
    assert again.status_code == 200 and again.json()["hash"] == body["hash"]


def test_full_width_codes_are_folded(service):
    wide = service.codes[0].translate({c: c + 0xFEE0 for c in range(0x21, 0x7F)})
    assert service.ask(code=f" {wide} ").status_code == 200


ROUTES = [
    ("post", "/v1/pre-credit", {"bank": 200}),
    ("post", "/v1/pre-credit/batch", {"bank": 200}),
    ("get", "/v1/decisions/{id}", {"bank": 200, "regulator": 200}),
    ("get", "/v1/decisions", {"regulator": 200}),
    ("get", "/v1/decisions/{id}/report", {"regulator": 200}),
    ("get", "/v1/decisions/{id}/advice", {"bank": 200, "regulator": 200}),
    ("post", "/v1/authorizations", {"operator": 201}),
    ("get", "/v1/authorizations", {"operator": 200}),
    ("post", "/v1/authorizations/{auth}/revoke", {"operator": 200}),
    ("get", "/v1/models/current", {"bank": 200, "regulator": 200, "operator": 200}),
    ("get", "/v1/features", {"bank": 200, "regulator": 200, "operator": 200}),
    ("post", "/admin/reload", {"operator": 200}),
]


def _call(service, method, path, role, decision_id):
    path = path.replace("{id}", decision_id).replace("{auth}", service.authorizations["valid19"])
    body = None
    if path == "/v1/pre-credit":
        body = {"uscc": service.codes[2], "authorization_id": service.authorizations["valid2"]}
    elif path.endswith("/batch"):
        body = {"items": [{"uscc": service.codes[3], "authorization_id": service.authorizations["valid3"]}]}
    elif path == "/v1/authorizations":
        body = {"uscc": service.codes[5], "bank_id": service.ids["bank"], "purpose": "信易贷", "data_scope": "纳税",
                "valid_from": "2026-01-01", "valid_until": "2027-12-31", "template_version": "2024",
                "document_hash": "a" * 64}
    headers = service.headers(role) if role else {}
    if method == "get":
        return service.client.get(path, headers=headers)
    return service.client.post(path, headers=headers, json=body)


def test_the_auth_matrix_role_by_endpoint(service):
    decision_id = service.ask().json()["request_id"]
    for method, path, allowed in ROUTES:
        for role in ("bank", "regulator", "operator"):
            response = _call(service, method, path, role, decision_id)
            if role in allowed:
                assert response.status_code == allowed[role], (method, path, role, response.text)
            else:
                error_of(response, 403, "ROLE_FORBIDDEN")
        error_of(_call(service, method, path, None, decision_id), 401, "AUTH_MISSING")
    bad = service.client.get("/v1/features", headers={"Authorization": "Bearer xyd_ban_nope"})
    error_of(bad, 401, "AUTH_INVALID")
    error_of(service.ask(role="disabled"), 403, "CLIENT_DISABLED")
    for open_path in ("/healthz", "/readyz", "/metrics"):
        assert service.client.get(open_path).status_code == 200
    for probed in ("/healthz", "/readyz"):  # load balancers probe with HEAD
        answer = service.client.head(probed)
        assert answer.status_code == 200 and answer.content == b""


def test_a_bank_never_sees_another_banks_decision(service):
    decision_id = service.ask().json()["request_id"]
    error_of(service.client.get(f"/v1/decisions/{decision_id}", headers=service.headers("other_bank")),
             404, "DECISION_NOT_FOUND")
    error_of(service.client.get("/v1/decisions/no-such-id", headers=service.headers("bank")), 404, "DECISION_NOT_FOUND")
    listed = service.client.get("/v1/decisions", params={"bank_id": service.ids["bank"], "uscc": service.codes[0]},
                                headers=service.headers("regulator")).json()
    assert listed["count"] >= 1 and all(d["client_id"] == service.ids["bank"] for d in listed["items"])
    assert service.client.get("/v1/decisions", params={"bank_id": service.ids["other_bank"]},
                              headers=service.headers("regulator")).json()["count"] == 0


def test_the_uscc_filters_read_a_code_as_the_question_does(service):
    """A regulator or operator types the code as they have it: lower case, full width, with spaces."""
    service.ask()
    code = service.codes[0]
    typed = " " + code.lower().translate({ord(c): ord(c) + 0xFEE0 for c in "0123456789"}) + " "
    for path, role in (("/v1/decisions", "regulator"), ("/v1/authorizations", "operator")):
        exact = service.client.get(path, params={"uscc": code}, headers=service.headers(role)).json()
        loose = service.client.get(path, params={"uscc": typed}, headers=service.headers(role)).json()
        assert exact["count"] >= 1 and loose["count"] == exact["count"], path
        error_of(service.client.get(path, params={"uscc": code[:-1] + "0" if code[-1] != "0" else code[:-1] + "1"},
                                    headers=service.headers(role)), 422, "INVALID_USCC")


def test_authorisations_are_valid_by_the_calendar_day_in_china():
    """Signed in China, valid by China's days: at 00:01 China time (16:01 UTC the day before) an
    authorisation that ended yesterday no longer answers; at 23:59 on its last day it still does."""
    from types import SimpleNamespace

    from api.common.refusals import Refusal
    from api.precredit.decide import check_authorization, today_in_china

    utc = dt.timezone.utc
    record = SimpleNamespace(bank_id=1, uscc="X", revoked_at=None, valid_from=dt.date(2026, 1, 1),
                             valid_until=dt.date(2026, 6, 30))
    last_minute = dt.datetime(2026, 6, 30, 15, 59, tzinfo=utc)  # 23:59 on 30 June in China
    first_minute = dt.datetime(2026, 6, 30, 16, 1, tzinfo=utc)  # 00:01 on 1 July in China, still 30 June in UTC
    assert today_in_china(last_minute) == dt.date(2026, 6, 30)
    assert today_in_china(first_minute) == dt.date(2026, 7, 1) and first_minute.date() == dt.date(2026, 6, 30)
    check_authorization(record, 1, "X", today_in_china(last_minute))
    with pytest.raises(Refusal) as refused:
        check_authorization(record, 1, "X", today_in_china(first_minute))
    assert refused.value.code == "AUTHORIZATION_EXPIRED"
    starting = SimpleNamespace(**{**record.__dict__, "valid_from": dt.date(2026, 7, 1), "valid_until": dt.date(2027, 6, 30)})
    check_authorization(starting, 1, "X", today_in_china(first_minute))  # valid from its first China minute
    with pytest.raises(Refusal):
        check_authorization(starting, 1, "X", today_in_china(last_minute))


@pytest.mark.parametrize("authorization, code", [
    ("missing-id", "AUTHORIZATION_NOT_FOUND"), ("expired", "AUTHORIZATION_EXPIRED"),
    ("future", "AUTHORIZATION_NOT_YET_VALID"), ("revoked", "AUTHORIZATION_REVOKED"),
    ("other_bank", "AUTHORIZATION_OTHER_BANK"), ("other_enterprise", "AUTHORIZATION_USCC_MISMATCH"),
])
def test_every_way_an_authorisation_fails_has_its_own_code(service, authorization, code):
    error_of(service.ask(authorization=authorization), 403, code)


def test_revoking_stops_the_next_question(service):
    assert service.ask(code=service.codes[4], authorization="valid4").status_code == 200
    revoked = service.client.post(f"/v1/authorizations/{service.authorizations['valid4']}/revoke",
                                  headers=service.headers("operator"))
    assert revoked.status_code == 200 and revoked.json()["revoked_at"]
    error_of(service.ask(code=service.codes[4], authorization="valid4"), 403, "AUTHORIZATION_REVOKED")


def test_bad_input_gets_a_4xx_in_one_shape(service):
    body = error_of(service.ask(code="91350100M000100Y44"), 422, "INVALID_USCC")
    assert "check_character" in body["message"]
    error_of(service.ask(authorization="unknown_enterprise", code=UNKNOWN), 404, "UNKNOWN_ENTERPRISE")
    error_of(service.client.post("/v1/pre-credit", content=b"{not json", headers={**service.headers("bank"),
                                                                                  "content-type": "application/json"}),
             422, "VALIDATION_ERROR")
    error_of(service.client.post("/v1/pre-credit", json={"uscc": service.codes[0]}, headers=service.headers("bank")),
             422, "VALIDATION_ERROR")
    error_of(service.ask(requested_amount=-5), 422, "VALIDATION_ERROR")
    huge = {"uscc": service.codes[0], "authorization_id": "x" * 300_000}
    error_of(service.client.post("/v1/pre-credit", json=huge, headers=service.headers("bank")), 413, "BODY_TOO_LARGE")
    too_many = {"items": [{"uscc": service.codes[0], "authorization_id": "a"}] * 1001}
    response = service.client.post("/v1/pre-credit/batch", json=too_many, headers=service.headers("bank"))
    assert response.status_code in (413, 422) and set(response.json()) == ERROR_KEYS
    error_of(service.client.get("/v1/nowhere", headers=service.headers("bank")), 404, "NOT_FOUND")
    error_of(service.client.get("/v1/decisions", params={"limit": 5000}, headers=service.headers("regulator")),
             422, "VALIDATION_ERROR")


def test_a_batch_answers_each_item_or_says_why_not(service):
    items = [{"uscc": service.codes[i], "authorization_id": service.authorizations[f"valid{i}"]} for i in range(5, 9)]
    items.insert(2, {"uscc": "bad", "authorization_id": "x"})
    items.append({"uscc": service.codes[0], "authorization_id": service.authorizations["expired"]})
    response = service.client.post("/v1/pre-credit/batch", json={"items": items}, headers=service.headers("bank"))
    assert response.status_code == 200, response.text
    body = response.json()
    assert body["count"] == 6 and body["decided"] == 4
    assert [r["index"] for r in body["results"]] == list(range(6))
    assert body["results"][2]["error"]["code"] == "INVALID_USCC"
    assert body["results"][5]["error"]["code"] == "AUTHORIZATION_EXPIRED"
    assert len({r["decision"]["request_id"] for r in body["results"] if r["decision"]}) == 4


def test_the_audit_chain_holds_and_names_the_first_tampered_row(service):
    for i in range(6):
        assert service.ask(code=service.codes[i % 3 + 10], authorization=f"valid{i % 3 + 10}").status_code == 200
    factory = sessions(make_engine(service.url))
    with factory() as session:
        result = audit.verify(session)
        assert result.ok and result.rows == 6
        session.execute(text("UPDATE decisions SET limit_yuan = limit_yuan + 1000000 WHERE seq = 4"))
        session.commit()
        broken = audit.verify(session)
    assert not broken.ok and broken.first_broken_seq == 4 and "content" in broken.problem


def test_a_model_reload_swaps_the_version_that_answers(service, model_home, champion_store, tmp_path):
    from models import tracking
    from models.run import promote, train_challenger
    from tests.api.service_fixtures import past_city_policy
    from tests.conftest import MODEL_SPLIT

    earlier = service.ask()
    before = earlier.headers["x-model-version"]
    # other settings, so another bundle (the same ones would retrain the champion, which promote refuses),
    # and other ones on each database this test runs on, since both share the session's store
    newer = train_challenger(model_home, policy=past_city_policy(tmp_path), split_months=MODEL_SPLIT,
                             params={"num_leaves": 6 + int(before)})
    promote(model_home, force=True, reason="reload test")
    assert service.ask().headers["x-model-version"] == before  # not until reloaded
    reloaded = service.client.post("/admin/reload", headers=service.headers("operator")).json()
    assert reloaded == {"previous_version": before, "model_version": newer.version, "changed": True}
    again = service.client.post("/admin/reload", headers=service.headers("operator")).json()
    assert again == {"previous_version": newer.version, "model_version": newer.version, "changed": False}
    stale = service.client.get(f"/v1/decisions/{earlier.json()['request_id']}/advice", headers=service.headers("bank"))
    error_of(stale, 409, "ADVICE_STALE")  # advice comes only from the model that decided
    answer = service.ask()
    assert answer.headers["x-model-version"] == newer.version == answer.json()["versions"]["model_version"]
    card = service.client.get("/v1/models/current", headers=service.headers("bank")).json()
    assert card["model_version"] == newer.version and card["published_profiles"]["enterprises"] > 1000
    assert tracking.version_for("champion") == newer.version


def test_the_regulator_page_explains_a_decision(service):
    decision_id = service.ask().json()["request_id"]
    page = service.client.get(f"/v1/decisions/{decision_id}/report", headers=service.headers("regulator"))
    assert page.status_code == 200 and page.headers["content-type"].startswith("text/html")
    text_ = page.text
    for expected in ('id="waterfall"', 'id="computation"', 'id="inputs"', 'id="rights"', 'id="not-named"',
                     'id="coverage"', 'id="groups"'):
        assert expected in text_, expected
    read = page_text(text_)
    for expected in ("贡献瀑布图", "Contribution waterfall", "数据来源、时效及法律依据", "国办发〔2021〕52号",
                     "model version", "policy version", decision_id, "参照 Reference", "中位画像", "改进建议",
                     "异议申诉", "北京时间 Beijing time (UTC+8)", "最近报送 latest delivery: 2026-06-", "主体类型 entity type",
                     "区县 district", "gap: behaviour / firmographic"):
        assert expected in read, expected
    assert "/v1/typeface/" in text_  # the service's pages link its base font, which browsers keep
    # the page may load nothing but its own styles and fonts: no script, no other host, no framing
    policy = page.headers["content-security-policy"]
    assert "default-src 'none'" in policy and "frame-ancestors 'none'" in policy and "script-src" not in policy
    assert '<meta http-equiv="Content-Security-Policy"' in text_ and "<script" not in text_
    whole = service.client.get(f"/v1/decisions/{decision_id}/report", params={"self_contained": "true"},
                               headers=service.headers("regulator")).text
    # saved to a file or an archive, the page carries its own glyphs and links nothing
    assert "/v1/typeface/" not in whole and "base64," in whole and 'id="waterfall"' in whole


class _Page(HTMLParser):
    """The numbers a regulator's page prints: its computation rows and its feature vector."""

    def __init__(self):
        super().__init__()
        self.computation, self.inputs, self._feature = {}, {}, None

    def handle_starttag(self, tag, attrs):
        attrs = dict(attrs)
        if tag == "tr" and "data-key" in attrs:
            self.computation[attrs["data-key"]] = json.loads(attrs["data-value"])
        if tag == "tr" and "data-feature" in attrs:
            self.inputs[attrs["data-feature"]] = json.loads(attrs["data-value"])


def _nested(flat: dict) -> dict:
    out: dict = {}
    for key, value in flat.items():
        *path, last = key.split(".")
        node = out
        for part in path:
            node = node.setdefault(part, {})
        node[last] = value
    return out


def _answered(service, count: int, requested_amount: int | None = None):
    """The bank's answered questions about the first ``count`` enterprises it is authorised for
    (every other one asking ``requested_amount``, when given), each with what it asked."""
    for i in range(count):
        asked = {"requested_amount": requested_amount} if requested_amount and i % 2 else {}
        answer = service.ask(code=service.codes[i], authorization=f"valid{i}" if i else "valid", **asked)
        if answer.status_code == 200:
            yield answer.json(), asked


def test_a_decision_is_redone_from_the_numbers_on_its_page_alone(service):
    """An examiner redoes PD, score, grade, decision and limit from what the page prints (no
    database, no model), for decisions with and without a requested amount."""
    from models.bundle import recompute

    checked = 0
    for body, _ in _answered(service, 12, 150_000):
        page = service.client.get(f"/v1/decisions/{body['request_id']}/report", headers=service.headers("regulator"))
        parsed = _Page()
        parsed.feed(page.text)
        redone = recompute(_nested(parsed.computation))
        assert redone["pd"] == pytest.approx(body["pd"], rel=1e-12)
        assert (redone["score"], redone["grade"], redone["decision"], redone["limit_yuan"]) == (
            body["score"], body["grade"], body["decision"], body["limit_yuan"])
        assert parsed.computation["bundle_id"] and len(parsed.inputs) >= 40  # the whole feature vector
        # ... and it is the published profile the decision was made on
        with sessions(make_engine(service.url))() as session:
            published = repository.profile_for(session, body["uscc"])
        as_published = dict(zip(feature_names(), published.values))
        assert parsed.inputs == {name: as_published[name] for name in parsed.inputs}
        checked += 1
    assert checked >= 6


def test_a_knockout_shows_the_records_it_rests_on(service):
    """A listed enterprise is declined with its listing's case number, court and date in the
    answer and on the regulator's page, the dishonest-debtor source marked as the knock-out's."""
    listed = service.authorizations.get("listed")
    assert listed, "the test city has an enterprise on the dishonest-debtor list"
    found = service.client.get("/v1/authorizations", headers=service.headers("operator"), params={"limit": 500}).json()
    code = next(a["uscc"] for a in found["items"] if a["id"] == listed)
    answer = service.ask(code=code, authorization="listed")
    assert answer.status_code == 200, answer.text
    body = answer.json()
    knockout = next(k for k in body["reasons"]["knockouts"] if k["code"] == "KO01")
    assert body["decision"] == "decline" and knockout["value"] == 1
    record = knockout["evidence"][0]
    assert "执" in record["number"] and record["authority"].endswith("人民法院") and record["date"] <= str(AS_OF)
    page = page_text(service.client.get(f"/v1/decisions/{body['request_id']}/report",
                                        headers=service.headers("regulator")).text)
    assert record["number"] in page and record["authority"] in page and "否决依据 knock-out" in page
    assert "拒绝 decline" in page


def test_a_bank_records_the_human_review_of_a_referral_and_the_page_shows_it(service):
    decided = {}
    for body, _ in _answered(service, 20):
        decided.setdefault(body["decision"], body["request_id"])
    assert {"refer", "approve"} <= set(decided), "the test city refers and approves some of its first enterprises"
    referred, path = decided["refer"], f"/v1/decisions/{decided['refer']}/review"
    body = {"outcome": "approve", "limit_yuan": 200_000, "reviewer": "信贷员 张三", "note": "补充了近三个月的银行流水"}
    error_of(service.client.post(path, json=body, headers=service.headers("regulator")), 403, "ROLE_FORBIDDEN")
    error_of(service.client.post(path, json=body, headers=service.headers("other_bank")), 404, "DECISION_NOT_FOUND")
    error_of(service.client.post(path, json={**body, "limit_yuan": None}, headers=service.headers("bank")),
             422, "REVIEW_LIMIT")
    error_of(service.client.post(path, json={**body, "outcome": "maybe"}, headers=service.headers("bank")),
             422, "VALIDATION_ERROR")
    recorded = service.client.post(path, json=body, headers=service.headers("bank"))
    assert recorded.status_code == 201 and recorded.json()["outcome"] == "approve", recorded.text
    error_of(service.client.post(path, json=body, headers=service.headers("bank")), 409, "ALREADY_REVIEWED")
    page = page_text(service.client.get(f"/v1/decisions/{referred}/report", headers=service.headers("regulator")).text)
    assert "人工审核结果 human review" in page and "信贷员 张三" in page and "CNY 200,000" in page
    # an approval is not reviewed
    error_of(service.client.post(f"/v1/decisions/{decided['approve']}/review", json=body,
                                 headers=service.headers("bank")), 409, "NOT_REFERRED")


def test_every_decline_and_referral_states_the_right_to_a_human_review(service):
    """PIPL 第二十四条: the answer and the page of every decline and referral state the right to a
    human review, with its basis; an approval does not; a decline's review is recorded like a referral's."""
    seen = {}
    answers = [body for body, _ in _answered(service, 20)]
    listed = service.authorizations.get("listed")
    found = service.client.get("/v1/authorizations", headers=service.headers("operator"), params={"limit": 500}).json()
    listed_answer = service.ask(code=next(a["uscc"] for a in found["items"] if a["id"] == listed),
                                authorization="listed").json()
    answers.append(listed_answer)
    for body in answers:
        rights = {r["right"]: r for r in body["reasons"]["rights"]}
        assert "objection" in rights
        if body["decision"] in ("refer", "decline"):
            assert "第二十四条" in rights["review"]["legal_basis"] and "人工复核" in rights["review"]["zh"], body
        else:
            assert "review" not in rights
        seen.setdefault(body["decision"], body)
    assert {"approve", "refer", "decline"} <= set(seen)
    declined = listed_answer
    assert declined["decision"] == "decline"
    assert "repair" in {r["right"] for r in declined["reasons"]["rights"]}  # a dishonest listing can be lifted
    page = page_text(service.client.get(f"/v1/decisions/{declined['request_id']}/report",
                                        headers=service.headers("regulator")).text)
    assert "人工复核 human review" in page and "个人信息保护法》第二十四条" in page and "信用修复 credit repair" in page
    approved = page_text(service.client.get(f"/v1/decisions/{seen['approve']['request_id']}/report",
                                            headers=service.headers("regulator")).text)
    assert "人工复核 human review" not in approved
    recorded = service.client.post(f"/v1/decisions/{declined['request_id']}/review", headers=service.headers("bank"),
                                   json={"outcome": "decline", "reviewer": "信贷员 李四"})
    assert recorded.status_code == 201, recorded.text


def test_no_decision_on_a_profile_older_than_the_policy_allows(service, monkeypatch):
    """The packaged policy's limit (92 days) against a profile as of AS_OF: refused with its own
    code on the 93rd day, decided on the 92nd."""
    import dataclasses

    import api.precredit.decide
    from models.policy import Policy
    limit = Policy.load().max_profile_age_days
    assert limit == 92
    bundle = service.client.app.state.holder.bundle
    bundle.policy = dataclasses.replace(bundle.policy, max_profile_age_days=limit)
    monkeypatch.setattr(api.precredit.decide, "today_in_china", lambda: AS_OF + dt.timedelta(days=limit + 1))
    error = error_of(service.ask(), 503, "PROFILE_STALE")
    assert str(AS_OF) in error["message"] and "时效" in error["message_zh"]
    monkeypatch.setattr(api.precredit.decide, "today_in_china", lambda: AS_OF + dt.timedelta(days=limit))
    assert service.ask().status_code == 200


def test_a_decision_says_what_would_change_it(service):
    """Advice for the bank's own decisions, re-scored by the model that decided; the reasons name
    their reference."""
    from models.policy import GRADES

    seen_advice = seen_data = 0
    thin = {service.authorizations[label]: label for label in ("thin0", "thin1", "thin2") if label in service.authorizations}
    assert thin, "the test city has files without tax returns"
    found = service.client.get("/v1/authorizations", headers=service.headers("operator"), params={"limit": 500}).json()
    thin_codes = [a["uscc"] for a in found["items"] if a["id"] in thin]
    answers = list(_answered(service, 20, 300_000)) + [
        (service.ask(code=a["uscc"], authorization=thin[a["id"]]).json(), {}) for a in found["items"] if a["id"] in thin]
    for body, asked in answers:
        assert body["reasons"]["reference"]["grade"] in GRADES and "B" in body["reasons"]["reference"]["en"]
        advice = service.client.get(f"/v1/decisions/{body['request_id']}/advice", headers=service.headers("bank"))
        assert advice.status_code == 200, advice.text
        got = advice.json()
        assert got["model_version"] == body["versions"]["model_version"]
        if body["uscc"] in thin_codes:  # told whatever the advice, unless already approved at grade A
            assert (got["data"] is None) == (body["grade"] == "A" and body["decision"] == "approve"), got
        if got["data"] is not None:  # a thin file: what its missing records would let the platform judge
            seen_data += 1
            assert {a["code"] for a in got["data"]["actions"]} <= {"DA01", "DA02"} and got["data"]["grade"] in GRADES
            assert f"评级为{got['data']['grade']}" in got["data"]["zh"]
            page = service.client.get(f"/v1/decisions/{body['request_id']}/report", headers=service.headers("regulator"))
            assert html.escape(got["data"]["zh"]) in page.text and 'id="data-advice"' in page.text
        if got["advice"] is None:
            assert got["why"]
            continue
        seen_advice += 1
        better = GRADES.index(got["advice"]["grade"]) < GRADES.index(body["grade"]) or (
            got["advice"]["decision"] == "approve" != body["decision"])
        assert better and got["advice"]["zh"].endswith(f"额度 ¥{got['advice']['limit_yuan']:,}")
        assert got["advice"]["limit_yuan"] <= asked.get("requested_amount", 10**12)  # capped as the decision was
    assert seen_advice >= 1 and seen_data >= 1


def test_without_a_champion_decisions_wait_and_readiness_says_why(database_url, model_home, champion_store, tmp_path,
                                                                   monkeypatch):
    from tests.api.service_fixtures import make_service

    svc = make_service(database_url, model_home, tmp_path, monkeypatch, champion_store, alias="nobody")
    with svc.client:
        error_of(svc.ask(), 503, "MODEL_UNAVAILABLE")
        ready = svc.client.get("/readyz")
        assert ready.status_code == 503 and "model" in json.dumps(ready.json())
        assert svc.client.get("/healthz").status_code == 200


CHROMIUM_FLAGS = ("--headless", "--no-sandbox", "--disable-gpu", "--disable-quic", "--no-first-run",
                  "--disable-background-networking", "--disable-component-update", "--disable-sync",
                  "--hide-scrollbars")


def _pixels_near(image, rgb: str, tolerance: float = 0.06) -> int:
    import numpy as np

    target = np.array([int(rgb[i:i + 2], 16) / 255 for i in (1, 3, 5)])
    return int((np.abs(image[:, :, :3] - target).max(axis=2) < tolerance).sum())


@pytest.mark.parametrize("database_url", ["sqlite"], indirect=True)
def test_the_report_page_renders_its_chart_in_headless_chromium(service, tmp_path):
    """Debian's chromium draws the page; the screenshot must show the waterfall's bars."""
    import subprocess

    import matplotlib.image

    from api.precredit.regulator_report import ADVERSE_COLOUR, POSITIVE_COLOUR, TOTAL_COLOUR
    from tests.api.service_fixtures import chromium as find_chromium

    chromium = find_chromium()
    decision_id = service.ask().json()["request_id"]
    page = tmp_path / "report.html"
    page.write_text(service.client.get(f"/v1/decisions/{decision_id}/report",
                                       headers=service.headers("regulator")).text, "utf-8")
    shot = tmp_path / "report.png"
    subprocess.run([chromium, *CHROMIUM_FLAGS, f"--user-data-dir={tmp_path / 'profile'}", f"--screenshot={shot}",
                    "--window-size=1000,1000", page.as_uri()], check=True, capture_output=True, timeout=120)
    image = matplotlib.image.imread(shot)
    assert image.shape[0] >= 900 and image.shape[1] >= 900
    assert _pixels_near(image, TOTAL_COLOUR) > 500  # the base value and margin bars
    assert _pixels_near(image, ADVERSE_COLOUR) + _pixels_near(image, POSITIVE_COLOUR) > 500


def test_hostile_values_get_a_4xx_never_a_500(service):
    regulator, operator = service.headers("regulator"), service.headers("operator")
    for params in ({"bank_id": 10**20}, {"uscc": "a\x00b"}, {"limit": -1}):
        error_of(service.client.get("/v1/decisions", params=params, headers=regulator), 422, "VALIDATION_ERROR")
    assert service.client.get("/v1/decisions", params={"date_to": "9999-12-31"}, headers=regulator).status_code == 200
    error_of(service.ask(authorization="a\x00b"), 422, "VALIDATION_ERROR")
    error_of(service.ask(product="贷\x00款"), 422, "VALIDATION_ERROR")
    lone_surrogate = ('{"uscc": "%s", "authorization_id": "%s", "product": "\\ud800"}'
                      % (service.codes[0], service.authorizations["valid"])).encode()
    error_of(service.client.post("/v1/pre-credit", content=lone_surrogate,
                                 headers={**service.headers("bank"), "content-type": "application/json"}),
             422, "VALIDATION_ERROR")
    error_of(service.client.get("/v1/decisions/%00x", headers=regulator), 422, "VALIDATION_ERROR")
    error_of(service.client.post("/v1/authorizations/x%00/revoke", headers=operator), 422, "VALIDATION_ERROR")
    created = service.client.post("/v1/authorizations", headers=operator, json={
        "uscc": service.codes[5], "bank_id": 2**40, "purpose": "x", "data_scope": "x", "valid_from": "2026-01-01",
        "valid_until": "2026-12-31", "template_version": "1", "document_hash": "a" * 64})
    error_of(created, 422, "VALIDATION_ERROR")
    assert service.ask(requested_amount=10**12).status_code == 200


def test_the_hash_does_not_depend_on_a_negative_zero():
    row = {k: None for k in audit.HASHED} | {"pd": 0.5, "score": -0.0}
    assert audit.payload(row) == audit.payload(row | {"score": 0.0})


def test_a_lost_database_connection_is_a_503_and_the_next_question_is_answered(model_home, champion_store, tmp_path,
                                                                              monkeypatch):
    url, drop = postgres_database()
    try:
        svc = make_service(url, model_home, tmp_path, monkeypatch, champion_store)
        with svc.client:
            assert svc.ask().status_code == 200
            database = url.rsplit("/", 1)[1]
            terminate_connections(database)  # the server restarts under the service
            lost = svc.ask()
            assert lost.status_code == 503, lost.text
            assert lost.json()["code"] == "DATABASE_UNAVAILABLE" and lost.json()["request_id"]
            again = svc.ask()
            assert again.status_code == 200, again.text
            admin = create_engine(POSTGRES_ADMIN, isolation_level="AUTOCOMMIT")
            with admin.connect() as connection:  # the database refuses connections for a while
                connection.execute(text(f'ALTER DATABASE "{database}" WITH ALLOW_CONNECTIONS false'))
            terminate_connections(database)
            # the first finds its pooled connection gone, the second cannot open a new one
            unreachable = [svc.ask() for _ in range(2)]
            with admin.connect() as connection:
                connection.execute(text(f'ALTER DATABASE "{database}" WITH ALLOW_CONNECTIONS true'))
            admin.dispose()
            for response in unreachable:
                assert response.status_code == 503, response.text
                assert response.json()["code"] == "DATABASE_UNAVAILABLE"
            assert svc.ask().status_code == 200
            with sessions(make_engine(url))() as session:
                assert audit.verify(session).ok
    finally:
        drop()


@pytest.mark.parametrize("source, age, stale", [
    ("tax_grades", 240, False),   # April's grades read in December: the year's evaluation, not stale
    ("tax_grades", 92 + 365, False),
    ("tax_grades", 92 + 366, True),  # a year and a quarter without a new evaluation
    ("tax_filings", 92, False),
    ("tax_filings", 93, True),
    ("court_executions", 93, True),
])
def test_freshness_is_judged_by_each_sources_own_cadence(source, age, stale):
    from api.precredit.regulator_report import source_is_stale

    assert source_is_stale(source, age, 92) is stale
    assert source_is_stale(source, age, None) is False  # a policy with no limit marks nothing
