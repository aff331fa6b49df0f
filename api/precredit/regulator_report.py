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

from api.db.tables import Decision
from features.pages import render_page
from features.registry import BY_NAME, category_name, feature_names, feature_set_version
from features.schemas import CADENCES, SOURCES
from features.typeface import with_linked_typeface, with_typeface
from models.explain import DecisionReasons

ADVERSE_COLOUR, POSITIVE_COLOUR, TOTAL_COLOUR = "#c0392b", "#1e8449", "#34495e"
TYPEFACE_PREFIX = "/v1/typeface/"
"""Where the service serves the pages' base font (api.routes.typeface)."""


def waterfall_svg(reasons: DecisionReasons, width: int = 760) -> str:
    """Bars from the reference profile's log-odds, through each named factor, the features never
    named to the enterprise and the rest, to the decision's log-odds (the margin)."""
    steps = [(f"{r['code']} {r['zh']}", r["contribution"]) for r in reasons["adverse"] + reasons["positive"]]
    withheld = sum(w["contribution"] for w in reasons.get("not_named", []))
    if reasons.get("not_named"):
        steps.append(("不向企业列示的因素 not named to the enterprise", withheld))
    named = sum(c for _, c in steps)
    other = reasons["margin"] - reasons["base_value"] - named
    steps.append(("其他因素 other factors", other))
    rows = [("参照画像 reference", reasons["base_value"], True)]
    running = reasons["base_value"]
    spans = [(0.0, running)]
    for label, contribution in steps:
        spans.append((running, running + contribution))
        rows.append((label, contribution, False))
        running += contribution
    spans.append((0.0, running))
    rows.append(("本企业 this enterprise (log-odds)", running, True))
    low = min(min(a, b) for a, b in spans)
    high = max(max(a, b) for a, b in spans)
    if math.isclose(low, high):
        high = low + 1
    left, bar_height, gap = 330, 22, 8
    plot = width - left - 70

    def x(value: float) -> float:
        return left + (value - low) / (high - low) * plot

    height = len(rows) * (bar_height + gap) + 30
    parts = [f'<svg xmlns="http://www.w3.org/2000/svg" width="{width}" height="{height}" role="img" '
             f'aria-label="contribution waterfall" id="waterfall">',
             f'<line x1="{x(0):.1f}" y1="0" x2="{x(0):.1f}" y2="{height - 20}" stroke="#999" stroke-dasharray="4"/>']
    for i, ((label, value, total), (start, end)) in enumerate(zip(rows, spans)):
        y = 10 + i * (bar_height + gap)
        colour = TOTAL_COLOUR if total else (ADVERSE_COLOUR if value > 0 else POSITIVE_COLOUR)
        a, b = sorted((x(start), x(end)))
        label = label if len(label) <= 34 else label[:33] + "…"
        parts.append(f'<text x="{left - 8}" y="{y + 16}" text-anchor="end" font-size="13">{html.escape(label)}</text>')
        parts.append(f'<rect x="{a:.1f}" y="{y}" width="{max(b - a, 2):.1f}" height="{bar_height}" fill="{colour}"/>')
        parts.append(f'<text x="{max(a, b) + 4:.1f}" y="{y + 16}" font-size="12">{value:+.3f}</text>')
    parts.append("</svg>")
    return "".join(parts)


DECISION_WORDS = {"approve": "批准 approve", "refer": "转人工审核 refer to a credit officer", "decline": "拒绝 decline"}
UNIT_WORDS = {"yuan": "元 CNY", "count": "个/次 count", "share": "", "months": "个月 months", "days": "天 days",
              "years": "年 years", "log_ratio": "对数比 log ratio", "correlation": "相关系数 correlation",
              "flag": "", "category": "", "kWh": "千瓦时 kWh", "m3": "立方米 cubic metres", "grade_steps": "级 grade steps",
              "ratio": "比值 ratio"}
CHINA = dt.timezone(dt.timedelta(hours=8))


def china_time(stored: str) -> str:
    """A stored UTC time as China Standard Time, the zone named."""
    try:
        moment = dt.datetime.fromisoformat(stored.replace("Z", "+00:00"))
    except ValueError:
        return stored
    if moment.tzinfo is None:
        moment = moment.replace(tzinfo=dt.timezone.utc)
    return moment.astimezone(CHINA).strftime("%Y-%m-%d %H:%M:%S 北京时间 (UTC+8)")


def _shown(value, unit: str | None) -> str:
    if value is None:
        return "无记录 no record"
    if unit == "flag":
        return "是 yes" if value else "否 no"
    if unit == "share" and isinstance(value, (int, float)):
        return f"{value:.1%}"
    if isinstance(value, float):
        text = f"{value:,.2f}" if unit == "yuan" else (f"{value:,.0f}" if value.is_integer() else f"{value:.4g}")
    else:
        text = str(value)
    words = UNIT_WORDS.get(unit or "", "")
    return f"{text} {words}".strip()


def _named(reason: dict, key: str) -> str:
    value = reason.get(key)
    if reason.get("unit") == "category" and value is not None:
        return category_name(reason["feature"], value)
    return _shown(value, reason.get("unit"))


def _feature_value(feature: str, value) -> str:
    """A feature's value as a person reads it, in the registry's unit (categories by name)."""
    declared = BY_NAME.get(feature)
    return _named({"feature": feature, "value": value, "unit": declared.unit if declared else None}, "value")


def _reason_rows(items: list[dict]) -> str:
    rows = []
    for r in items:
        if r.get("kind") == "absence":  # a fact about the record, said once, with the figures it stands for
            members = ", ".join(BY_NAME[f].code if f in BY_NAME else f for f in r.get("features", []))
            value = f"记录缺失 absent<br><small>{html.escape(members)}</small>"
            reference = "—"
        else:
            value, reference = html.escape(_named(r, "value")), html.escape(_named(r, "reference_value"))
        disputed = "<br><small>异议中 under objection</small>" if r.get("under_objection") else ""
        rows.append(f"<tr class=\"{r.get('kind', 'behaviour')}\"><td>{html.escape(r['code'])}{disputed}</td><td>{html.escape(r['zh'])}</td>"
                    f"<td>{html.escape(r['en'])}</td><td>{value}</td><td>{reference}</td>"
                    f"<td>{r['contribution']:+.4f}</td></tr>")
    return "".join(rows)


def _not_named(reasons: DecisionReasons) -> str:
    withheld = reasons.get("not_named") or []
    if not withheld:
        return "<p>本政策未声明不列示的因素。The policy declares no feature kept from the reasons.</p>"
    rows = "".join(f"<tr><td>{html.escape(BY_NAME[w['feature']].code if w['feature'] in BY_NAME else w['feature'])}</td>"
                   f"<td>{html.escape(BY_NAME[w['feature']].zh if w['feature'] in BY_NAME else w['feature'])}</td>"
                   f"<td>{html.escape(_feature_value(w['feature'], w['value']))}</td>"
                   f"<td>{w['contribution']:+.4f}</td></tr>" for w in withheld)
    total = sum(w["contribution"] for w in withheld)
    return (f"<p>以下因素不可由企业改变且可能构成歧视，按政策从不作为不利理由向企业列示；其作用在此向监管方披露（合计 {total:+.4f}）。"
            f"These features are not actionable and may be discriminatory: by policy they are never named to the "
            f"enterprise as a reason against it; their effect is shown here (together {total:+.4f}).</p>"
            f"<table id=\"not-named\"><tr><th>code</th><th>因素 feature</th><th>value</th><th>contribution</th></tr>{rows}</table>")


def _coverage(reasons: DecisionReasons, computation: dict) -> str:
    if "coverage" not in reasons:
        return ""
    adverse = sum(r["contribution"] for r in reasons["adverse"])
    required = computation.get("reason_coverage")
    of_all = reasons.get("coverage_of_all")
    whole = "" if of_all is None else (
        f"<br>计入不向企业列示的因素后，覆盖全部不利影响的 <b>{of_all:.1%}</b>。"
        f"Counting the features never named to the enterprise, they cover <b>{of_all:.1%}</b> of all the adverse effect.")
    return (f"<p id=\"coverage\">列示的 {len(reasons['adverse'])} 项不利因素覆盖了可列示不利影响的 "
            f"<b>{reasons['coverage']:.1%}</b>（合计 {adverse:+.4f}）{f'，政策要求不低于 {required:.0%}' if required else ''}。"
            f"The {len(reasons['adverse'])} adverse reasons named cover <b>{reasons['coverage']:.1%}</b> of the "
            f"nameable adverse effect{f' (the policy requires at least {required:.0%})' if required else ''}.{whole}</p>")


def _reference(reasons: DecisionReasons) -> str:
    reference = reasons.get("reference")
    if not reference:  # decided before reasons were stated against a reference
        return "<p>基准为训练样本的平均 (the training set's mean, path-dependent contributions).</p>"
    return (f"<p><b>{html.escape(reference['zh'])}</b><br>{html.escape(reference['en'])}<br>"
            f"参照画像本身 the reference itself: PD {reference['pd']:.4f}, 等级 grade {html.escape(reference['grade'])}, "
            f"log-odds {reference['margin']:+.3f}. 每个因素的贡献是其在本企业与参照画像之差中所占的精确份额（Shapley 值），"
            f"各贡献之和等于两者对数几率之差。Each contribution is the feature's exact share (Shapley value) of the gap "
            f"between this enterprise and the reference; they add up to that gap.</p>")


def _advice(advice: dict | None, why: str | None, data: dict | None = None) -> str:
    shared = "" if data is None else (f'<p id="data-advice">数据 data: {html.escape(data["zh"])}<br>'
                                      f'{html.escape(data["en"])}</p>')
    if advice is None:
        return f"<p>无建议 no advice: {html.escape(why or '')}</p>{shared}"
    steps = "".join(f"<li>{html.escape(a['code'])} · {'现在 now' if a['horizon'] == 'now' else '12个月 12 months'}"
                    f"{' · ¥' + format(a['amount_yuan'], ',.0f') if a['amount_yuan'] else ''}"
                    f"{'<br><small>法律依据 legal basis: ' + html.escape(a['legal_basis']) + '</small>' if a['legal_basis'] else ''}"
                    f"</li>" for a in advice["actions"])
    return (f"<p><b>{html.escape(advice['zh'])}</b><br>{html.escape(advice['en'])}</p><ul>{steps}</ul>"
            f"<p><small>假设其余记录保持不变，由作出该决策的模型重新评分。Re-scored by the model that made the decision, "
            f"the rest of the record unchanged: PD {advice['pd']:.4f}.</small></p>{shared}")


def _number(value) -> str:
    """A number exactly as stored (repr round-trips a float), for redoing the arithmetic."""
    return "—" if value is None else repr(value)


def _intercept_label(calibration: dict) -> str:
    """The intercept's row name: the model's, or its group's when the model is calibrated within
    groups (the pooled intercept and the group's shift stated beside it)."""
    within = calibration.get("within")
    if not within:
        return "校准截距 calibration a"
    from features.registry import category_name

    group = within["value"]
    name = category_name(within["feature"], group) if group is not None else "未知 unknown"
    return (f"校准截距（按{name}校准）calibration a within {name}: "
            f"{_number(within['pooled_a'])} {'+' if within['shift'] >= 0 else '−'} {_number(abs(within['shift']))}")


def _computation(c: dict, decision: Decision) -> str:
    """The decision as arithmetic: every number printed exactly, each row tagged with the key
    :func:`models.bundle.recompute` reads (``data-key``, ``data-value`` as JSON)."""
    if not c:
        return "<p>本决策作出时尚未记录计算过程。This decision was made before its computation was recorded.</p>"
    rows = [("bundle_id", "模型包 bundle id", c.get("bundle_id")),
            ("margin", "模型对数几率 margin (log-odds of default)", c["margin"]),
            ("calibration.a", _intercept_label(c["calibration"]), c["calibration"]["a"]),
            ("calibration.b", "校准斜率 calibration b", c["calibration"]["b"]),
            ("score.base_points", "基准分 base points", c["score"]["base_points"]),
            ("score.base_odds", "基准好坏比 base odds (good:bad)", c["score"]["base_odds"]),
            ("score.pdo", "翻倍分 points to double the odds (PDO)", c["score"]["pdo"])]
    rows += [(f"grade_bounds.{g}", f"等级 {g} 的PD上限 upper PD bound of grade {g}", bound)
             for g, bound in c["grade_bounds"].items()]
    rows += [(f"grade_decisions.{g}", f"等级 {g} 的决策 decision of grade {g}", d) for g, d in c["grade_decisions"].items()]
    rows += [("knockout_decisions", "否决规则的决策 knock-out decisions", c["knockout_decisions"]),
             ("capacity_yuan", "保守经营能力估计（12个月）conservative 12-month capacity (CNY)", c["capacity_yuan"]),
             ("requested_yuan", "申请金额 requested amount (CNY)", c["requested_yuan"])]
    rows += [(f"limits.multipliers.{g}", f"等级 {g} 的额度乘数 limit multiplier of grade {g}", m)
             for g, m in c["limits"]["multipliers"].items()]
    rows += [("limits.unsecured_cap_yuan", "信用额度上限 unsecured cap (CNY)", c["limits"]["unsecured_cap_yuan"]),
             ("limits.round_to_yuan", "取整单位 rounded down to (CNY)", c["limits"]["round_to_yuan"]),
             ("limits.minimum_yuan", "最低额度 minimum (CNY)", c["limits"]["minimum_yuan"])]
    body = "".join(f"<tr data-key=\"{html.escape(key)}\" data-value=\"{html.escape(json.dumps(value, ensure_ascii=False))}\">"
                   f"<td>{html.escape(label)}</td><td>{html.escape(_number(value) if not isinstance(value, (str, list)) else json.dumps(value, ensure_ascii=False))}</td></tr>"
                   for key, label, value in rows)
    return f"""<table id="computation">{body}</table>
<ol>
<li>PD = 1 / (1 + exp(−(a + b · margin))) = {decision.pd:.6f}</li>
<li>评分 score = base_points + PDO / ln 2 · (ln((1 − PD) / PD) − ln base_odds) = {decision.score:.1f}（四舍五入到0.1 rounded to 0.1）</li>
<li>等级 grade: 第一个 PD &lt; 上限 的等级，否则 E — the first grade whose bound exceeds the PD, else E = {html.escape(decision.grade)}</li>
<li>决策 decision: 等级的决策与各否决规则的决策中最严者 — the strictest of the grade's decision and the knock-outs' = {html.escape(decision.decision)}</li>
<li>额度 limit = floor(min(capacity × multiplier[grade], cap, requested) / rounding) × rounding；拒绝或低于最低额度时为0 — zero when declined or below the minimum = CNY {decision.limit_yuan:,}</li>
</ol>"""


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


def _inputs(reasons: DecisionReasons, decision: Decision) -> str:
    inputs = reasons.get("inputs")
    if not inputs:
        return "<p>本决策作出时尚未记录模型输入。This decision was made before its inputs were recorded.</p>"
    named = _input_values(reasons, decision)
    if named is None:
        return ("<p>本决策的特征集（{0}）不是现行注册表的版本，特征向量按位置列示。The decision's feature set ({0}) "
                "is not the registry's now: the vector is listed by position.</p>".format(
                    html.escape(decision.feature_set_version))
                + "<ol>" + "".join(f"<li>{html.escape(json.dumps(v, ensure_ascii=False))}</li>" for v in inputs)
                + "</ol>")
    inputs = named
    rows = "".join(f"<tr data-feature=\"{html.escape(name)}\" data-value=\"{html.escape(json.dumps(value, ensure_ascii=False))}\"><td>{html.escape(BY_NAME[name].code if name in BY_NAME else name)}</td>"
                   f"<td>{html.escape(BY_NAME[name].zh if name in BY_NAME else name)}<br><small>{html.escape(name)}</small></td>"
                   f"<td>{html.escape(_feature_value(name, value))}</td></tr>"
                   for name, value in inputs.items())
    return f'<table id="inputs"><tr><th>code</th><th>特征 feature</th><th>value</th></tr>{rows}</table>'


MONTHLY_SOURCES = tuple(name for name, source in SOURCES.items() if source.cadence == "monthly")
"""Sources delivered month by month (by the 24th of the next month), as the schemas declare."""


def source_is_stale(source: str, age_days: int, limit_days: int | None) -> bool:
    """Whether a source whose latest delivery is ``age_days`` old is past the policy's freshness
    limit, judged by the source's own cadence (:data:`features.schemas.CADENCES`): a yearly grade
    stands for the year after it is published, a month's returns and a register for the limit."""
    return limit_days is not None and age_days > limit_days + CADENCES[SOURCES[source].cadence]


def _sources(reasons: DecisionReasons, decision: Decision, limit: int | None, deliveries: dict) -> str:
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
        cadence = SOURCES[s].cadence
        through = {"monthly": f"{anchor} 月（月度报送）month {anchor}",
                   "annual": f"{as_of} 前发布的最近年度评价（每年发布）the latest yearly evaluation published by {as_of}"
                   }.get(cadence, f"{as_of}（登记簿现状 register as of）")
        delivered = deliveries.get(s)
        # a source is as old as its latest delivery (the profile's own day when no delivery was recorded)
        age = (decided - (delivered or as_of)).days
        never = s in deliveries and delivered is None
        if s in deliveries:
            through += (f"<br>最近报送 latest delivery: {delivered}" if delivered else
                        "<br>！截至画像日未收到任何报送 nothing delivered by the profile's day")
        marks = [m for m, hit in (("否决依据 knock-out", s in knocked), ("列示理由 cited", s in behaviours),
                                  ("无记录 holds nothing for it", s in absent)) if hit]
        stale = never or source_is_stale(s, age, limit)
        rows.append(f"<tr class=\"{'cited' if (s in behaviours or s in knocked) else ''}{' stale' if stale else ''}\">"
                    f"<td>{html.escape(SOURCES[s].title_zh)}<br><small>{s}</small></td>"
                    f"<td>{html.escape(SOURCES[s].department_zh)}</td><td>{through}<br>"
                    f"<small>决策时已 {age} 天 {age} days old at the decision{' ！超过时效 past the freshness limit' if stale else ''}</small></td>"
                    f"<td>{html.escape('；'.join(marks))}</td>"
                    f"<td>{html.escape(SOURCES[s].catalogue_category)}</td><td>{html.escape(SOURCES[s].legal_basis)}</td></tr>")
    return ("<table id=\"sources\"><tr><th>source</th><th>department</th><th>数据截至 data through</th><th>本决策 use here</th>"
            f"<th>catalogue category</th><th>legal basis</th></tr>{''.join(rows)}</table>")


def _rights(reasons: DecisionReasons, decision: Decision, rights: dict, policy_version: str | None) -> str:
    """The rights stated with the decision (the policy that made it chose them: human review on
    every decline and referral), or, for a decision made before rights were stated with it, those
    of the policy in force."""
    stated = reasons.get("rights")
    if stated:
        items = [(RIGHT_TITLES.get(r["right"], r["right"]), r["zh"], r["en"], r.get("legal_basis")) for r in stated]
        heading = f"<p>决策时的政策 policy of the decision: {html.escape(decision.policy_version)}</p>"
    else:
        if policy_version is None:
            return "<p>服务当前未载入模型，无法给出现行政策的权利告知。No model is loaded: the rights of the policy in force cannot be shown.</p>"
        if not rights:
            return f"<p>现行政策（{html.escape(policy_version)}）未声明权利告知。The policy in force ({html.escape(policy_version)}) states no rights.</p>"
        from models.policy import stated_rights

        chosen = stated_rights(rights, decision.decision, [k.get("feature") for k in reasons["knockouts"]],
                               [s for r in reasons["adverse"] for s in r.get("sources") or []])
        items = [(RIGHT_TITLES.get(r["right"], r["right"]), r["zh"], r["en"], r.get("legal_basis")) for r in chosen]
        heading = f"<p>现行政策 policy in force: {html.escape(policy_version)}</p>"
    return heading + "<ul id=\"rights\">" + "".join(
        f"<li><b>{html.escape(t)}</b>: {html.escape(zh or '')}<br>{html.escape(en or '')}"
        + (f"<br><small>依据 basis: {html.escape(basis)}</small>" if basis else "") + "</li>"
        for t, zh, en, basis in items if zh or en) + "</ul>"


RIGHT_TITLES = {"objection": "异议申诉 objection", "repair": "信用修复 credit repair", "review": "人工复核 human review"}


def _knockout(k: dict) -> str:
    """A knock-out: the rule, the value it read and its source, the records it rests on (number,
    authority, date, severity, amount, repair route) and its legal basis."""
    out = (f"<li><b>{html.escape(k['code'])}</b> {html.escape(k['zh'])} / {html.escape(k['en'])} → "
           f"{html.escape(DECISION_WORDS.get(k['decision'], k['decision']))}"
           + ("（所依据记录异议中 its records are under objection）" if k.get("under_objection") else ""))
    declared = BY_NAME.get(k.get("feature"))
    if declared:
        sources = "、".join(SOURCES[s].title_zh for s in declared.sources)
        out += (f"<br>依据的记录 the record: {html.escape(declared.zh)} = "
                f"{html.escape(_feature_value(declared.name, k.get('value')))}"
                f"（来源 source: {html.escape(sources)}）")
    if k.get("evidence"):
        rows = "".join(
            f"<tr><td>{html.escape(e['number'])}</td><td>{html.escape(e['authority'])}</td><td>{html.escape(e['kind'])}</td>"
            f"<td>{html.escape(e.get('date') or '—')}</td><td>{html.escape(e.get('severity') or '—')}</td>"
            f"<td>{'—' if e.get('amount_yuan') is None else format(e['amount_yuan'], ',.2f')}</td>"
            f"<td>{html.escape(e.get('reported') or '—')}</td><td>{html.escape(e.get('repair') or '—')}</td></tr>"
            for e in k["evidence"])
        out += ("<table class=\"evidence\"><tr><th>案号/文号 number</th><th>机关 authority</th><th>类别 kind</th>"
                "<th>日期 date</th><th>严重程度 severity</th><th>金额 amount (CNY)</th><th>公示/报送 reported</th>"
                f"<th>修复途径 repair route</th></tr>{rows}</table>")
    elif "evidence" in k:
        out += "<br><small>平台未保存该规则的逐条记录。No record-level evidence is kept for this rule.</small>"
    return out + f"<br><small>法律依据 legal basis: {html.escape(k['legal_basis'])}</small></li>"


def _under_objection(reasons: DecisionReasons) -> str:
    """The objections and repair notices open on the enterprise when it was decided, and what rests on them."""
    disputes = reasons.get("under_objection") or []
    if not disputes:
        return "<p id=\"objections\">决策时无未结异议。No objection was open when the decision was made.</p>"
    rows = "".join(
        f"<tr><td>{html.escape('信用修复 repair' if d['kind'] == 'repair' else '异议 objection')}</td>"
        f"<td>{html.escape(SOURCES[d['source']].title_zh if d.get('source') in SOURCES else '指标 feature')}</td>"
        f"<td>{html.escape(' / '.join((d.get('record') or {}).values()) or (d.get('feature') or ''))}</td>"
        f"<td>{html.escape('、'.join(BY_NAME[f].code if f in BY_NAME else f for f in d['features']))}</td>"
        f"<td>{html.escape(d['filed'])}</td><td>{html.escape(d['due'])}</td><td>{html.escape(d['objection_id'])}</td></tr>"
        for d in disputes)
    return ("<p>以下记录在决策时处于异议处理中；标注“异议中”的否决规则和因素依据这些记录。Records under objection when "
            "decided; the knock-outs and factors marked as such rest on them.</p><table id=\"objections\"><tr><th>类别 kind"
            "</th><th>来源 source</th><th>记录 record</th><th>涉及指标 features</th><th>提出 filed</th><th>答复期限 due"
            f"</th><th>编号 id</th></tr>{rows}</table>")


def _review(decision: Decision, review) -> str:
    if decision.decision not in ("refer", "decline"):
        return ""
    if review is None:
        if decision.decision == "decline":
            return ("<p id=\"review\">人工复核：企业可要求银行人工复核本拒绝决定；银行尚未记录复核结果。Human review: the "
                    "enterprise may ask the bank to review this decline; no review is recorded yet.</p>")
        return ("<p id=\"review\">人工审核：银行尚未记录复核结果。Human review: the bank has not recorded an outcome "
                "yet.</p>")
    granted = f"，授信额度 CNY {review.limit_yuan:,}" if review.limit_yuan is not None else ""
    return (f"<p id=\"review\">人工审核结果 human review: <b>{html.escape(DECISION_WORDS.get(review.outcome, review.outcome))}"
            f"</b>{granted}（复核人 reviewer {html.escape(review.reviewer)}，{html.escape(china_time(review.reviewed_at))}）"
            f"{'<br>' + html.escape(review.note) if review.note else ''}</p>")


GROUP_DIMENSIONS = {"district_code": "区县 district", "industry_section": "行业 industry", "entity_type": "主体类型 entity type"}


def _groups(reasons: DecisionReasons, decision: Decision, whole_list: dict | None) -> str:
    """How the model that decided treats this enterprise's district, industry and kind of entity on
    the whole pre-credit list it was validated on (:func:`models.fairness.population_fairness`)."""
    if not whole_list:
        return ("<p>作出本决策的模型未在全部预授信名单上测量公平信贷（训练时无已存画像），或服务已换用其他模型。The model "
                "that decided was not measured on a whole pre-credit list, or the service now holds another model.</p>")
    values = _input_values(reasons, decision) or {}
    rows = []
    for dimension, title in GROUP_DIMENSIONS.items():
        row = next((r for r in whole_list["tables"].get(dimension, []) if r.get("value") == str(values.get(dimension))), None)
        if row is None:
            continue
        loans = ("—" if not row.get("loans") else
                 f"{row['loan_default_rate']:.2%} [{row['loan_default_low']:.2%}, {row['loan_default_high']:.2%}] / PD "
                 f"{row['loan_mean_pd']:.2%} ({row['loans']:,})")
        rows.append(f"<tr><td>{html.escape(title)}</td><td>{html.escape(row['group'])}</td><td>{row['enterprises']:,}</td>"
                    f"<td>{row['approval_rate']:.1%} [{row['approval_low']:.1%}, {row['approval_high']:.1%}]</td>"
                    f"<td>{row['of_which_behaviour']:+.3f} / {row['of_which_firmographic']:+.3f}</td>"
                    f"<td>{html.escape(loans)}</td><td>{html.escape(row['verdict'])}</td></tr>")
    findings = "".join(f"<li>{html.escape(f)}</li>" for f in whole_list.get("findings", []))
    return (f"<p>作出本决策的模型在 {html.escape(whole_list['as_of'])} 的全部预授信名单（{whole_list['enterprises']:,} 户，"
            f"批准 {whole_list['approval_rate']:.1%}）上对本企业所在群体的表现。On the whole pre-credit list the deciding "
            "model was validated on: each group's approval, its gap to the whole list in log-odds split into what its "
            "firms do and what they are, and realised against predicted default on its out-of-time loans.</p>"
            "<table id=\"groups\"><tr><th>dimension</th><th>群体 group</th><th>enterprises</th><th>批准 approval</th>"
            "<th>gap: behaviour / firmographic</th><th>loans: realised / PD</th><th>verdict</th></tr>"
            + "".join(rows) + "</table>" + (f"<p><b>Findings</b></p><ul>{findings}</ul>" if findings else ""))


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
    service holds that model)."""
    from markupsafe import Markup

    reasons = json.loads(decision.reasons)
    computation = reasons.get("computation") or {}
    limit = computation.get("max_profile_age_days")
    age = (dt.datetime.fromisoformat(decision.created_at.replace("Z", "+00:00")).date()
           - dt.date.fromisoformat(decision.profile_as_of)).days
    # the sections are built (and their values escaped) by the functions above; the template lays them out
    parts = {name: Markup(fragment) for name, fragment in {
        "reference": _reference(reasons), "waterfall": waterfall_svg(reasons),
        "coverage": _coverage(reasons, computation), "advice": _advice(advice, why, data),
        "knockouts": "".join(_knockout(k) for k in reasons["knockouts"]) or "<li>无 none</li>",
        "under_objection": _under_objection(reasons), "adverse": _reason_rows(reasons["adverse"]),
        "positive": _reason_rows(reasons["positive"]), "not_named": _not_named(reasons),
        "groups": _groups(reasons, decision, whole_list),
        "rights": _rights(reasons, decision, rights or {}, policy_in_force), "review": _review(decision, review),
        "computation": _computation(computation, decision),
        "sources": _sources(reasons, decision, limit, deliveries or {}), "inputs": _inputs(reasons, decision),
    }.items()}
    page = render_page("api.precredit", "regulator_page.html", d=decision, name=name or "", parts=parts, limit=limit, age=age,
                       decision_words=DECISION_WORDS.get(decision.decision, decision.decision),
                       decided_at=china_time(decision.created_at), bundle_id=str(computation.get("bundle_id") or "—"))
    return with_typeface(page) if self_contained else with_linked_typeface(page, TYPEFACE_PREFIX)
