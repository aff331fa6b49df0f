"""One example of every request and response body, for the OpenAPI document a bank's integrator
reads and generates a client from. Taken from a real decision of the test city (shortened to one
reason of each kind); tests hold each example valid against its schema and shaped as the service
really answers."""

from __future__ import annotations

import hashlib
import json

REQUEST_ID = "968fce70-ba49-44cd-b1e8-4716b707c1ce"
USCC = "914205020485576251"
AUTHORIZATION_ID = "bc3999e6-e4ca-4ec8-8306-8cc6840c5b6c"

PRE_CREDIT_REQUEST = {"uscc": USCC, "authorization_id": AUTHORIZATION_ID, "requested_amount": 500000,
                      "product": "信易贷·税易贷"}

PRE_CREDIT = {
    "request_id": REQUEST_ID, "uscc": USCC, "name": "西陵鸿源商务服务有限公司", "pd": 0.008954, "score": 645.9,
    "grade": "B", "decision": "approve", "limit_yuan": 80000, "requested_amount": 500000, "product": "信易贷·税易贷",
    "reasons": {
        "knockouts": [],
        "adverse": [{"code": "UT08", "kind": "behaviour", "feature": "elec_arrears_share_3m", "features": None,
                     "sources": ["electricity"], "zh": "近3个月用电欠费占账单金额比例",
                     "en": "share of the electricity billed over the last 3 months left unpaid", "unit": "share",
                     "value": 0.3068, "reference_value": 0.0, "contribution": 1.135, "under_objection": None}],
        "positive": [{"code": "CS01", "kind": "behaviour", "feature": "sales_electricity_corr_12m", "features": None,
                      "sources": ["tax_filings", "electricity"], "zh": "近12个月销售额与用电量的相关系数",
                      "en": "correlation of monthly sales and electricity over the last 12 months",
                      "unit": "correlation", "value": 0.9665, "reference_value": 0.7501, "contribution": -0.6988,
                      "under_objection": None}],
        "coverage": 0.8299, "base_value": -4.666158, "margin": -4.91434,
        "reference": {"zh": "196 户训练样本中获批且评级为B的企业的中位画像",
                      "en": "the median profile of the 196 training enterprises the model approves in grade B",
                      "group": {"feature": "entity_type", "value": "enterprise"},
                      "population": 196, "margin": -4.666158, "pd": 0.011126, "grade": "B"},
        "under_objection": None,
        "rights": [{"right": "objection",
                    "zh": "对决策所用的信用信息有异议的，可通过市中小企业融资综合信用服务平台“异议申诉”栏目或信用中国（湖北宜昌）网站提出，平台在5个工作日内协同处理并答复。",
                    "en": "An enterprise that disputes a record used in this decision may object (异议申诉) through the "
                          "city's SME credit-financing platform or the Credit China (Yichang) site; the platform answers "
                          "within 5 working days.",
                    "legal_basis": "《征信业管理条例》第二十五条；宜昌市2024年社会信用体系建设工作要点第5项"}]},
    "versions": {"model_version": "1", "policy_version": "2026.12-4", "feature_set_version": "86324a010556",
                 "profile_as_of": "2026-06-30"},
    "decided_at": "2026-12-01T20:14:30.861831Z", "client_id": 1, "authorization_id": AUTHORIZATION_ID,
}

def _as_stored(reasons: dict) -> dict:
    """The reasons as the chain keeps them: no dispute, so no ``under_objection`` field anywhere
    (the answer's schema shows them as null)."""
    return {k: [{f: v for f, v in item.items() if f != "under_objection"} for item in value]
            if isinstance(value, list) else value for k, value in reasons.items() if k != "under_objection"}


# The example decision's receipt, as the service signs it (api.trust.signing.make_receipt), by a key made
# for this documentation and published in KEYRING: a test verifies it as a bank would. Its private
# key is not kept, so when the example answer or row changes (a new feature-set version) the example
# is re-signed by a new documentation key (Signer + make_receipt) and KEYRING names that key. The
# digests are computed here as api.trust.audit and api.trust.signing compute them (written out, so
# that this module imports nothing of the service).
_SIGNED_ROW = {"request_id": REQUEST_ID, "client_id": 1, "uscc": USCC, "name": PRE_CREDIT["name"],
               "authorization_id": AUTHORIZATION_ID, "model_version": "1", "policy_version": "2026.12-4",
               "profile_as_of": "2026-06-30", "feature_set_version": "86324a010556", "product": PRE_CREDIT["product"],
               "requested_amount": 500000, "pd": PRE_CREDIT["pd"], "score": PRE_CREDIT["score"], "grade": "B",
               "decision": "approve", "limit_yuan": 80000,
               "reasons": json.dumps(_as_stored(PRE_CREDIT["reasons"]), ensure_ascii=False, sort_keys=True)}
_PREVIOUS = "7d0c2f3b9a51e4c68f2d1e0b3a4c5d6e7f8091a2b3c4d5e6f708192a3b4c5d6e"
_RECORD = hashlib.sha256(json.dumps(_SIGNED_ROW, sort_keys=True, ensure_ascii=False,
                                    separators=(",", ":")).encode("utf-8")).hexdigest()


def _answer_digest() -> str:
    import rfc8785  # light: pure Python, no dependencies

    unsigned = {k: v for k, v in PRE_CREDIT.items() if k not in ("hash", "receipt", "decided_at")}
    return hashlib.sha256(rfc8785.dumps(unsigned)).hexdigest()


_CONTENT = (f'{{"answer":"{_answer_digest()}","decided_at":"{PRE_CREDIT["decided_at"]}","format":2,'
            f'"record":"{_RECORD}","seq":1042}}')
RECEIPT = {"format": "xyd-receipt/2", "seq": 1042, "prev_hash": _PREVIOUS,
           "hash": hashlib.sha256(f"{_PREVIOUS}\n{_CONTENT}".encode("utf-8")).hexdigest(), "record": _RECORD,
           "key_id": "6f46faa466bb6ce4",
           "signature": "S0SBNomvjdHL7mEeLgs0yzfKiN4L8KE5J3NRHpeH8uluOtQXyh81uqVPoATfVWp+RId3RaJExMrQZCocrEvxCQ=="}
PRE_CREDIT["hash"] = RECEIPT["hash"]
PRE_CREDIT["receipt"] = RECEIPT

KEYRING = {"format": "xyd-keyring/1", "current": "6f46faa466bb6ce4", "keys": [{
    "key_id": "6f46faa466bb6ce4", "algorithm": "Ed25519", "public_key": "q0GZZ7i9Xt0nOmZgXajRl68aOWl/w+xO9mMwu8OXkoI=",
    "public_key_pem": "-----BEGIN PUBLIC KEY-----\nMCowBQYDK2VwAyEAq0GZZ7i9Xt0nOmZgXajRl68aOWl/w+xO9mMwu8OXkoI=\n"
                      "-----END PUBLIC KEY-----\n",
    "created_at": "2026-12-07T20:50:07.256032Z", "retired_at": None}]}

PRE_CREDIT_BATCH_REQUEST = {"items": [PRE_CREDIT_REQUEST, {"uscc": "91420502MA4ABCDE1X", "authorization_id": "unknown"}]}

PRE_CREDIT_BATCH = {"request_id": "0b7c1a52-58d4-4f3e-9d0e-2a1f4a6f9c11", "count": 2, "decided": 1, "results": [
    {"index": 0, "decision": PRE_CREDIT, "error": None},
    {"index": 1, "decision": None,
     "error": {"code": "USCC_INVALID", "message": "91420502MA4ABCDE1X: organisation-code check character (position 17) "
                                                  "should be '3', found '1'",
               "message_zh": "统一社会信用代码校验失败"}}]}

DECISIONS = {"count": 1, "items": [{**PRE_CREDIT, "receipt": None}]}  # lists carry no receipts

ADVICE = {"request_id": REQUEST_ID, "uscc": USCC, "model_version": "1", "grade": "B", "decision": "approve",
          "advice": {"actions": [{"code": "AC02", "horizon": "now", "amount_yuan": 384.89, "legal_basis": None,
                                  "changes": {"elec_arrears_latest": 0.0, "elec_arrears_share_3m": 0.0,
                                              "sources_in_arrears": "minus one"}}],
                     "zh": "结清当前电费欠费 ¥385 → 评级升至A，额度 ¥100,000",
                     "en": "pay the electricity arrears of ¥385 → grade A, limit ¥100,000",
                     "pd": 0.003211, "grade": "A", "decision": "approve", "limit_yuan": 100000},
          "why": None, "data": None, "assumption_zh": "假设其余记录保持不变，由作出该决策的模型重新评分",
          "assumption_en": "re-scored by the model that made the decision, the rest of the record unchanged"}

REVIEW_REQUEST = {"outcome": "approve", "limit_yuan": 300000, "reviewer": "信贷员 张敏 (工号 0417)",
                  "note": "实地走访，经营正常；电费欠费已于当月结清"}

REVIEW = {"request_id": REQUEST_ID, "outcome": "approve", "limit_yuan": 300000, "reviewer": "信贷员 张敏 (工号 0417)",
          "note": "实地走访，经营正常；电费欠费已于当月结清", "reviewed_at": "2026-12-02T09:30:12.104233Z"}

AUTHORIZATION_REQUEST = {"uscc": USCC, "bank_id": 1, "purpose": "信易贷预授信", "data_scope": "纳税,水电气",
                         "valid_from": "2025-12-01", "valid_until": "2027-12-01", "template_version": "2024",
                         "document_hash": "08b3096fc9e25042c626f87f3e965f0e0ab573c36b1203b1a4c9552c8fc75e7f"}

AUTHORIZATION = {"id": AUTHORIZATION_ID, **AUTHORIZATION_REQUEST, "revoked_at": None,
                 "created_at": "2026-12-01T20:14:30.726604Z"}

AUTHORIZATIONS = {"count": 1, "items": [AUTHORIZATION]}

MODEL_CARD = {"model_version": "1", "bundle_id": "b074d27d7651", "alias": "champion",
              "feature_set_version": "86324a010556", "policy_version": "2026.12-4", "trained_at": "2026-12-01T20:14:23",
              "windows": {"train": ["2024-08", "2025-02"], "valid": ["", ""], "calib": ["", ""],
                          "oot": ["2025-03", "2025-06"], "matured_until": "2025-06", "warmup_until": "2024-07",
                          "min_defaults": 10, "thin": True, "evidence": []},
              "loans": {"train": 609, "valid": 0, "calib": 0, "oot": 350},
              "metrics": {"oot_auc": 0.6585, "oot_auc_low": 0.499, "oot_auc_high": 0.8181, "oot_ece": 0.0266},
              "published_profiles": {"enterprises": 2475, "newest_as_of": "2026-06-30",
                                     "feature_set_versions": ["86324a010556"]}}

RELOAD = {"previous_version": "1", "model_version": "2", "changed": True}

ERROR = {"code": "AUTH_INVALID", "message": "unknown API key", "message_zh": "API密钥无效",
         "request_id": "b58590d6-fbf0-4f1e-b48e-cbdac79c5580"}

ERRORS = {status: {**body, "request_id": "b58590d6-fbf0-4f1e-b48e-cbdac79c5580"} for status, body in {
    400: {"code": "BAD_REQUEST", "message": "the request cannot be read", "message_zh": "请求有误"},
    401: {k: v for k, v in ERROR.items() if k != "request_id"},
    403: {"code": "ROLE_FORBIDDEN", "message": "a regulator may not do this; it is for: bank",
          "message_zh": "当前角色（regulator）无权执行此操作"},
    404: {"code": "DECISION_NOT_FOUND", "message": "no such decision", "message_zh": "决策记录不存在"},
    409: {"code": "ALREADY_REVIEWED", "message": f"decision {REQUEST_ID} has a recorded review already",
          "message_zh": "该决策已记录复核结果"},
    413: {"code": "BODY_TOO_LARGE", "message": "the body is over 1048576 bytes", "message_zh": "请求体过大"},
    422: {"code": "VALIDATION_ERROR", "message": "invalid request: body.uscc: Field required",
          "message_zh": "请求参数校验失败：body.uscc: Field required"},
    429: {"code": "TOO_MANY_FAILED_AUTHENTICATIONS", "message": "too many failed authentications from this address "
          "or against this key prefix; try again in 42 s", "message_zh": "认证失败次数过多，请 42 秒后重试"},
    503: {"code": "MODEL_UNAVAILABLE", "message": "no champion model is loaded; promote one with `xyd promote`",
          "message_zh": "暂无可用的冠军模型"},
}.items()}
"""An error body for each status the routes document: a generated client's docs show each its own."""

HEALTH = {"status": "ok"}
READY = {"status": "ready", "model_version": "1", "problems": []}
NOT_READY = {"status": "not ready", "model_version": None,
             "problems": ["model: no champion: promote one with `xyd promote`"]}
FEATURES = {"feature_set_version": "86324a010556", "count": 1, "features": [
    {"name": "elec_arrears_share_3m", "code": "UT08", "zh": "近3个月用电欠费占账单金额比例",
     "en": "share of the electricity billed over the last 3 months left unpaid", "unit": "share", "monotone": 1}]}

OBJECTION_ID = "5b0e8c1e-2f4d-4b8e-9a57-0c2d6f1e9a44"
OBJECTION_REQUEST = {"uscc": USCC, "kind": "objection", "source": "administrative_penalties",
                     "record": {"decision_no": "宜环罚〔2025〕12号"}, "feature": None,
                     "grounds": "该处罚决定已被复议机关撤销（宜府复决〔2025〕3号），不应继续公示",
                     "attachments": ["3f0a9c5e1b7d2e4f6a8c0b1d3e5f7a9c2b4d6e8f0a1c3e5b7d9f1a3c5e7b9d0f"],
                     "authorization_id": AUTHORIZATION_ID}
OBJECTION = {"id": OBJECTION_ID, "kind": "objection", "uscc": USCC, "source": "administrative_penalties",
             "record": {"decision_no": "宜环罚〔2025〕12号"}, "feature": None,
             "features": ["penalty_count_36m", "penalty_serious_36m", "penalty_amount_36m"],
             "department": "市生态环境局", "grounds": OBJECTION_REQUEST["grounds"],
             "attachments": OBJECTION_REQUEST["attachments"], "filed_by": 1, "authorization_id": AUTHORIZATION_ID,
             "filed_at": "2025-09-30T02:15:07.118204Z", "filed_day": "2025-09-30", "due_day": "2025-10-14",
             "due_provisional": False, "status": "open", "overdue": False, "settled_at": None, "settled_day": None,
             "working_days_taken": None, "settlement": None, "republished_at": None}
OBJECTIONS = {"count": 1, "items": [OBJECTION]}
SETTLEMENT_REQUEST = {"outcome": "removed", "note": "经核查，该处罚决定已被撤销，删除该记录", "changes": None,
                      "repaired_on": None}
CHANGES = {"items": [{"cursor": "17", "uscc": USCC, "name": "西陵鸿源商务服务有限公司", "cause": "removed",
                      "objection_id": OBJECTION_ID, "changed_at": "2025-10-10T06:30:12.004518Z",
                      "profile_as_of": "2025-09-30", "previous_request_id": REQUEST_ID,
                      "previous_decided_at": "2025-09-28T01:02:03.000000Z",
                      "previous": {"grade": "C", "decision": "refer", "limit_yuan": 0, "pd": 0.0412},
                      "now": {"grade": "B", "decision": "approve", "limit_yuan": 80000, "pd": 0.0121},
                      "now_note": None}],
           "next": "17"}
