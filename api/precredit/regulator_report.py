"""The regulator's page for one decision: a contribution waterfall (inline SVG, no scripts), the
reasons in Chinese and English (absences said as facts, the never-named features apart, what the
named reasons cover), the enterprise's rights, the decision as arithmetic an examiner can redo
from the page alone, the feature vector the model saw, every data source with its freshness and
legal basis, and the versions; times in China time."""

from __future__ import annotations

import datetime as dt
import html
import json
import math

import numpy as np
from markupsafe import Markup

from api.db.tables import Decision
from features.pages import both, render_page
from features.registry import BY_NAME, category_name, feature_names, feature_set_version
from features.schemas import CADENCES, SOURCES
from features.typeface import with_linked_typeface, with_typeface
from models.explain import DecisionReasons

ADVERSE_COLOUR, POSITIVE_COLOUR, TOTAL_COLOUR = "#c0392b", "#1e8449", "#34495e"
TYPEFACE_PREFIX = "/v1/typeface/"
"""Where the service serves the pages' base font (api.routes.typeface)."""


def waterfall_svg(reasons: DecisionReasons, width: int = 760) -> str:
    """Bars from the reference profile's log-odds, through each named factor, the features never
    named to the enterprise and the rest, to the decision's log-odds (the margin). Each label is
    written in Chinese and in English (``lang``): the page's language toggle shows one."""
    steps = [((f"{r['code']} {r['zh']}", f"{r['code']} {r['en']}"), r["contribution"])
             for r in reasons["adverse"] + reasons["positive"]]
    withheld = sum(w["contribution"] for w in reasons.get("not_named", []))
    if reasons.get("not_named"):
        steps.append((("不向企业列示的因素", "not named to the enterprise"), withheld))
    named = sum(c for _, c in steps)
    other = reasons["margin"] - reasons["base_value"] - named
    steps.append((("其他因素", "other factors"), other))
    rows = [(("参照画像", "reference"), reasons["base_value"], True)]
    running = reasons["base_value"]
    spans = [(0.0, running)]
    for label, contribution in steps:
        spans.append((running, running + contribution))
        rows.append((label, contribution, False))
        running += contribution
    spans.append((0.0, running))
    rows.append((("本企业（对数几率）", "this enterprise (log-odds)"), running, True))
    low = min(min(a, b) for a, b in spans)
    high = max(max(a, b) for a, b in spans)
    if math.isclose(low, high):
        high = low + 1
    left, bar_height, gap = 330, 22, 8
    plot = width - left - 70

    def x(value: float) -> float:
        return left + (value - low) / (high - low) * plot

    def cut(label: str, room: int) -> str:  # the room left of the bars, in characters of each script
        return label if len(label) <= room else label[:room - 1] + "…"

    height = len(rows) * (bar_height + gap) + 30
    parts = [f'<svg xmlns="http://www.w3.org/2000/svg" viewBox="0 0 {width} {height}" width="{width}" '
             f'height="{height}" role="img" aria-label="contribution waterfall" id="waterfall">',
             f'<line x1="{x(0):.1f}" y1="0" x2="{x(0):.1f}" y2="{height - 20}" stroke="#999" stroke-dasharray="4"/>']
    for i, (((zh, en), value, total), (start, end)) in enumerate(zip(rows, spans)):
        y = 10 + i * (bar_height + gap)
        colour = TOTAL_COLOUR if total else (ADVERSE_COLOUR if value > 0 else POSITIVE_COLOUR)
        a, b = sorted((x(start), x(end)))
        for lang, label, room in (("zh-CN", zh, 34), ("en", en, 48)):
            parts.append(f'<text lang="{lang}" x="{left - 8}" y="{y + 16}" text-anchor="end" font-size="13">'
                         f'{html.escape(cut(label, room))}</text>')
        parts.append(f'<rect x="{a:.1f}" y="{y}" width="{max(b - a, 2):.1f}" height="{bar_height}" fill="{colour}"/>')
        parts.append(f'<text x="{max(a, b) + 4:.1f}" y="{y + 16}" font-size="12">{value:+.3f}</text>')
    parts.append("</svg>")
    return "".join(parts)


DECISION_WORDS = {"approve": ("批准", "approve"), "refer": ("转人工审核", "refer to a credit officer"),
                  "decline": ("拒绝", "decline")}
"""Each decision in Chinese and English."""
UNIT_WORDS = {"yuan": ("元", "CNY"), "count": ("个/次", "count"), "months": ("个月", "months"), "days": ("天", "days"),
              "years": ("年", "years"), "log_ratio": ("对数比", "log ratio"), "correlation": ("相关系数", "correlation"),
              "kWh": ("千瓦时", "kWh"), "m3": ("立方米", "cubic metres"), "grade_steps": ("级", "grade steps"),
              "ratio": ("比值", "ratio")}
"""A value's unit in Chinese and English (shares, flags and categories need none)."""
CHINA = dt.timezone(dt.timedelta(hours=8))


def china_time(stored: str) -> str:
    """A stored UTC time as China Standard Time, the zone named in both languages (markup)."""
    try:
        moment = dt.datetime.fromisoformat(stored.replace("Z", "+00:00"))
    except ValueError:
        return stored
    if moment.tzinfo is None:
        moment = moment.replace(tzinfo=dt.timezone.utc)
    return Markup("{} {} (UTC+8)").format(moment.astimezone(CHINA).strftime("%Y-%m-%d %H:%M:%S"),
                                          both("北京时间", "Beijing time"))


def shown_value(value, unit: str | None, feature: str | None = None) -> dict:
    """A value as a person reads it: ``text`` and the unit's ``words`` (Chinese, English), or
    ``absent`` for no record; flags as yes or no, shares as percentages, categories by name."""
    text, words = "", None
    if value is None:
        pass
    elif unit == "category" and feature is not None:
        text = category_name(feature, value)
    elif unit == "flag":
        words = ("是", "yes") if value else ("否", "no")
    elif unit == "share" and isinstance(value, (int, float)):
        text = f"{value:.1%}"
    else:
        if isinstance(value, float):
            text = f"{value:,.2f}" if unit == "yuan" else (f"{value:,.0f}" if value.is_integer() else f"{value:.4g}")
        else:
            text = str(value)
        words = UNIT_WORDS.get(unit or "")
    return {"absent": value is None, "text": text, "words": words}


def _feature_value(feature: str, value) -> dict:
    """A feature's value in the registry's unit (:func:`shown_value`)."""
    declared = BY_NAME.get(feature)
    return shown_value(value, declared.unit if declared else None, feature)


def _code(feature: str) -> str:
    return BY_NAME[feature].code if feature in BY_NAME else feature


def _reasons_shown(items: list[dict]) -> list[dict]:
    """Named reasons as the page's rows: an absence is a fact about the record, said once, with the
    figures it stands for; a behaviour shows its value and the reference's."""
    return [{"kind": r.get("kind", "behaviour"), "code": r["code"], "zh": r["zh"], "en": r["en"],
             "under_objection": r.get("under_objection"), "contribution": r["contribution"],
             "members": ", ".join(_code(f) for f in r.get("features") or []),
             "value": shown_value(r.get("value"), r.get("unit"), r.get("feature")),
             "reference": shown_value(r.get("reference_value"), r.get("unit"), r.get("feature"))} for r in items]


def _coverage(reasons: DecisionReasons, computation: dict) -> dict | None:
    if "coverage" not in reasons:
        return None
    return {"named": len(reasons["adverse"]), "share": reasons["coverage"],
            "adverse": sum(r["contribution"] for r in reasons["adverse"]),
            "required": computation.get("reason_coverage"), "of_all": reasons.get("coverage_of_all")}


def _number(value) -> str:
    """A number exactly as stored (repr round-trips a float), for redoing the arithmetic."""
    return "—" if value is None else repr(value)


def _intercept_label(calibration: dict) -> tuple[str, str]:
    """The intercept's row name: the model's, or its group's when the model is calibrated within
    groups (the pooled intercept and the group's shift stated beside it)."""
    within = calibration.get("within")
    if not within:
        return "校准截距", "calibration a"
    group = within["value"]
    name = category_name(within["feature"], group) if group is not None else "未知 unknown"
    split = f"{_number(within['pooled_a'])} {'+' if within['shift'] >= 0 else '−'} {_number(abs(within['shift']))}"
    return f"校准截距（按{name}校准）: {split}", f"calibration a within {name}: {split}"


def _computation(c: dict) -> list[dict]:
    """The decision as arithmetic: every number printed exactly, each row tagged with the key
    :func:`models.bundle.recompute` reads (``data-key``, ``data-value`` as JSON)."""
    if not c:
        return []
    rows = [("bundle_id", ("模型包", "bundle id"), c.get("bundle_id")),
            ("margin", ("模型对数几率", "margin (log-odds of default)"), c["margin"]),
            ("calibration.a", _intercept_label(c["calibration"]), c["calibration"]["a"]),
            ("calibration.b", ("校准斜率", "calibration b"), c["calibration"]["b"]),
            ("score.base_points", ("基准分", "base points"), c["score"]["base_points"]),
            ("score.base_odds", ("基准好坏比", "base odds (good:bad)"), c["score"]["base_odds"]),
            ("score.pdo", ("翻倍分", "points to double the odds (PDO)"), c["score"]["pdo"])]
    rows += [(f"grade_bounds.{g}", (f"等级 {g} 的PD上限", f"upper PD bound of grade {g}"), bound)
             for g, bound in c["grade_bounds"].items()]
    rows += [(f"grade_decisions.{g}", (f"等级 {g} 的决策", f"decision of grade {g}"), d)
             for g, d in c["grade_decisions"].items()]
    rows += [("knockout_decisions", ("否决规则的决策", "knock-out decisions"), c["knockout_decisions"]),
             ("capacity_yuan", ("保守经营能力估计（12个月）", "conservative 12-month capacity (CNY)"), c["capacity_yuan"]),
             ("requested_yuan", ("申请金额", "requested amount (CNY)"), c["requested_yuan"])]
    rows += [(f"limits.multipliers.{g}", (f"等级 {g} 的额度乘数", f"limit multiplier of grade {g}"), m)
             for g, m in c["limits"]["multipliers"].items()]
    rows += [("limits.unsecured_cap_yuan", ("信用额度上限", "unsecured cap (CNY)"), c["limits"]["unsecured_cap_yuan"]),
             ("limits.round_to_yuan", ("取整单位", "rounded down to (CNY)"), c["limits"]["round_to_yuan"]),
             ("limits.minimum_yuan", ("最低额度", "minimum (CNY)"), c["limits"]["minimum_yuan"])]
    return [{"key": key, "label": label, "json": json.dumps(value, ensure_ascii=False),
             "shown": json.dumps(value, ensure_ascii=False) if isinstance(value, (str, list)) else _number(value)}
            for key, label, value in rows]


def _input_values(reasons: DecisionReasons, decision: Decision) -> dict | None:
    """The decision's recorded inputs by feature name; None when it recorded none, or recorded a
    vector of a feature set that is not the registry's now (its positions name nothing today)."""
    inputs = reasons.get("inputs")
    if not inputs:
        return None
    if isinstance(inputs, list):  # the profile's values in its feature set's registry order
        if decision.feature_set_version != feature_set_version() or len(inputs) != len(feature_names()):
            return None
        return dict(zip(feature_names(), inputs))
    return inputs


def _inputs(reasons: DecisionReasons, decision: Decision) -> dict | None:
    inputs = reasons.get("inputs")
    if not inputs:
        return None
    named = _input_values(reasons, decision)
    if named is None:
        return {"by_position": [json.dumps(v, ensure_ascii=False) for v in inputs]}
    return {"by_position": None, "named": [
        {"name": name, "json": json.dumps(value, ensure_ascii=False), "code": _code(name),
         "zh": BY_NAME[name].zh if name in BY_NAME else name, "value": _feature_value(name, value)}
        for name, value in named.items()]}


def source_is_stale(source: str, age_days: int, limit_days: int | None) -> bool:
    """Whether a source whose latest delivery is ``age_days`` old is past the policy's freshness
    limit, judged by the source's own cadence (:data:`features.schemas.CADENCES`): a yearly grade
    stands for the year after it is published, a month's returns and a register for the limit."""
    return limit_days is not None and age_days > limit_days + CADENCES[SOURCES[source].cadence]


def _sources(reasons: DecisionReasons, decision: Decision, limit: int | None, deliveries: dict) -> list[dict]:
    """Every source the feature set reads: what it holds data through, how old it was at the
    decision, whether past the policy's freshness limit, and what this decision rests on it for."""
    from features.profile.pointintime import anchor_months

    behaviours = {s for r in reasons["adverse"] + reasons["positive"] if r.get("kind", "behaviour") == "behaviour"
                  for s in r.get("sources") or (BY_NAME[r["feature"]].sources if r.get("feature") in BY_NAME else ())}
    absent = {s for r in reasons["adverse"] + reasons["positive"]  # a source that holds nothing for it at all
              if r.get("kind") == "absence" and r.get("feature") is None for s in r.get("sources", [])}
    knocked = {s for k in reasons["knockouts"] if k.get("feature") in BY_NAME for s in BY_NAME[k["feature"]].sources}
    as_of = dt.date.fromisoformat(decision.profile_as_of)
    decided = dt.datetime.fromisoformat(decision.created_at.replace("Z", "+00:00")).date()
    anchor = str(np.datetime64(int(anchor_months(np.array([np.datetime64(as_of, "D")]))[0]), "M"))
    used = sorted({s for f in feature_names() for s in BY_NAME[f].sources}, key=list(SOURCES).index)
    rows = []
    for s in used:
        source, delivered = SOURCES[s], deliveries.get(s)
        # a source is as old as its latest delivery (the profile's own day when no delivery was recorded)
        age = (decided - (delivered or as_of)).days
        never = s in deliveries and delivered is None
        rows.append({"name": s, "title_zh": source.title_zh, "title_en": source.title_en,
                     "department_zh": source.department_zh, "department_en": source.department_en,
                     "cadence": source.cadence, "anchor": anchor, "as_of": as_of,
                     "delivered_known": s in deliveries, "delivered": delivered, "age": age,
                     "stale": never or source_is_stale(s, age, limit), "cited": s in behaviours or s in knocked,
                     "marks": [m for m, hit in ((("否决依据", "knock-out"), s in knocked), (("列示理由", "cited"), s in behaviours),
                                                (("无记录", "holds nothing for it"), s in absent)) if hit],
                     "catalogue_category": source.catalogue_category, "legal_basis": source.legal_basis})
    return rows


RIGHT_TITLES = {"objection": ("异议申诉", "objection"), "repair": ("信用修复", "credit repair"),
                "review": ("人工复核", "human review")}


def _rights(reasons: DecisionReasons, decision: Decision, rights: dict, policy_version: str | None) -> dict:
    """The rights stated with the decision (the policy that made it chose them: human review on
    every decline and referral), or, for a decision made before rights were stated with it, those
    of the policy in force."""
    stated = reasons.get("rights")
    if stated:
        chosen, policy, of_decision = stated, decision.policy_version, True
    elif policy_version is None:
        return {"missing": "no model"}
    elif not rights:
        return {"missing": "none stated", "policy": policy_version}
    else:
        from models.policy import stated_rights

        chosen = stated_rights(rights, decision.decision, [k.get("feature") for k in reasons["knockouts"]],
                               [s for r in reasons["adverse"] for s in r.get("sources") or []])
        policy, of_decision = policy_version, False
    return {"missing": None, "policy": policy, "of_decision": of_decision,
            "items": [{"title": RIGHT_TITLES.get(r["right"], (r["right"], r["right"])), "zh": r["zh"] or "",
                       "en": r["en"] or "", "legal_basis": r.get("legal_basis")} for r in chosen if r["zh"] or r["en"]]}


def _knockouts(reasons: DecisionReasons) -> list[dict]:
    """Each knock-out: the rule, the value it read and its sources, the records it rests on (number,
    authority, date, severity, amount, repair route; None when none were kept) and its legal basis."""
    out = []
    for k in reasons["knockouts"]:
        declared = BY_NAME.get(k.get("feature"))
        out.append({"code": k["code"], "zh": k["zh"], "en": k["en"], "legal_basis": k["legal_basis"],
                    "decision_words": DECISION_WORDS.get(k["decision"], (k["decision"], k["decision"])),
                    "under_objection": k.get("under_objection"), "declared": declared,
                    "value": _feature_value(declared.name, k.get("value")) if declared else None,
                    "sources": "、".join(SOURCES[s].title_zh for s in declared.sources) if declared else "",
                    "evidence": k.get("evidence") if "evidence" in k else None})
    return out


def _disputes(reasons: DecisionReasons) -> list[dict]:
    """The objections and repair notices open on the enterprise when it was decided, and what rests on them."""
    return [{"kind": d["kind"], "source": SOURCES[d["source"]].title_zh if d.get("source") in SOURCES else None,
             "record": " / ".join((d.get("record") or {}).values()) or (d.get("feature") or ""),
             "features": "、".join(_code(f) for f in d["features"]), "filed": d["filed"], "due": d["due"],
             "objection_id": d["objection_id"]} for d in reasons.get("under_objection") or []]


def _withheld(reasons: DecisionReasons) -> list[dict]:
    return [{"code": _code(w["feature"]), "feature": w["feature"],
             "zh": BY_NAME[w["feature"]].zh if w["feature"] in BY_NAME else w["feature"],
             "value": _feature_value(w["feature"], w["value"]), "contribution": w["contribution"]}
            for w in reasons.get("not_named") or []]


GROUP_DIMENSIONS = {"district_code": ("区县", "district"), "industry_section": ("行业", "industry"),
                    "entity_type": ("主体类型", "entity type")}


def _groups(reasons: DecisionReasons, decision: Decision, whole_list: dict | None) -> list[dict]:
    """How the model that decided treats this enterprise's district, industry and kind of entity on
    the whole pre-credit list it was validated on (:func:`models.fairness.population_fairness`)."""
    if not whole_list:
        return []
    values = _input_values(reasons, decision) or {}
    rows = []
    for dimension, title in GROUP_DIMENSIONS.items():
        row = next((r for r in whole_list["tables"].get(dimension, []) if r.get("value") == str(values.get(dimension))), None)
        if row is None:
            continue
        loans = ("—" if not row.get("loans") else
                 f"{row['loan_default_rate']:.2%} [{row['loan_default_low']:.2%}, {row['loan_default_high']:.2%}] / PD "
                 f"{row['loan_mean_pd']:.2%} ({row['loans']:,})")
        rows.append({"dimension": title, "row": row, "loans": loans})
    return rows


def render(decision: Decision, name: str | None, advice: dict | None = None, why: str | None = None,
           review=None, rights: dict | None = None, deliveries: dict | None = None,
           policy_in_force: str | None = None, self_contained: bool = False, whole_list: dict | None = None,
           data: dict | None = None) -> str:
    """The whole page (``advice`` as :meth:`models.advice.Advice.as_json` gives it, or None and
    ``why``; ``data``: for a thin file, what the records it lacks would let the platform judge; ``review``: the bank's recorded review of a referral, if any; ``rights``: what the
    enterprise may do now, in the words of the policy in force, :attr:`models.policy.Policy.rights`;
    ``deliveries``: each source's latest delivery as the profile's day saw it; ``policy_in_force``:
    the version those rights come from; ``self_contained``: the page's glyphs embedded instead of the
    service's base font linked, for a page saved to a file or an archive, at about half a second;
    ``whole_list``: the deciding model's fair-lending measure of the whole pre-credit list, when the
    service holds that model). Laid out by ``templates/regulator_page.html``, every value escaped there."""
    reasons: DecisionReasons = json.loads(decision.reasons)
    computation = reasons.get("computation") or {}
    limit = computation.get("max_profile_age_days")
    age = (dt.datetime.fromisoformat(decision.created_at.replace("Z", "+00:00")).date()
           - dt.date.fromisoformat(decision.profile_as_of)).days
    withheld = _withheld(reasons)
    page = render_page(
        "api.precredit", "regulator_page.html", d=decision, name=name or "", limit=limit, age=age,
        decision_words=DECISION_WORDS.get(decision.decision, (decision.decision, decision.decision)),
        decided_at=china_time(decision.created_at), bundle_id=str(computation.get("bundle_id") or "—"),
        reference=reasons.get("reference"), waterfall=Markup(waterfall_svg(reasons)),  # built escaped
        coverage=_coverage(reasons, computation), advice=advice, why=why, data=data,
        knockouts=_knockouts(reasons), disputes=_disputes(reasons),
        adverse=_reasons_shown(reasons["adverse"]), positive=_reasons_shown(reasons["positive"]),
        withheld=withheld, withheld_total=sum(w["contribution"] for w in withheld),
        whole_list=whole_list, groups=_groups(reasons, decision, whole_list),
        rights=_rights(reasons, decision, rights or {}, policy_in_force),
        review_shown=decision.decision in ("refer", "decline"), review=review,
        review_words=None if review is None else DECISION_WORDS.get(review.outcome, (review.outcome, review.outcome)),
        reviewed_at=None if review is None else china_time(review.reviewed_at),
        computation=_computation(computation), sources=_sources(reasons, decision, limit, deliveries or {}),
        inputs=_inputs(reasons, decision))
    return with_typeface(page) if self_contained else with_linked_typeface(page, TYPEFACE_PREFIX)
