"""The regulator's page for one decision: a contribution waterfall (inline SVG, no scripts), the
reasons in Chinese and English, every data source with its legal basis, and the versions."""

from __future__ import annotations

import html
import json
import math

from api.db.tables import Decision
from features.registry import BY_NAME, category_name, feature_names
from features.typeface import with_linked_typeface
from features.schemas import SOURCES

ADVERSE_COLOUR, POSITIVE_COLOUR, TOTAL_COLOUR = "#c0392b", "#1e8449", "#34495e"
TYPEFACE_PREFIX = "/v1/typeface/"
"""Where the service serves the pages' base font (api.routes.typeface)."""


def waterfall_svg(reasons: dict, width: int = 760) -> str:
    """Bars from the reference profile's log-odds, through each named factor and the rest, to the
    decision's log-odds (the margin)."""
    steps = [(f"{r['code']} {r['zh']}", r["contribution"]) for r in reasons["adverse"] + reasons["positive"]]
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
    left, bar_height, gap = 300, 22, 8
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
        parts.append(f'<text x="{left - 8}" y="{y + 16}" text-anchor="end" font-size="13">{html.escape(label)}</text>')
        parts.append(f'<rect x="{a:.1f}" y="{y}" width="{max(b - a, 2):.1f}" height="{bar_height}" fill="{colour}"/>')
        parts.append(f'<text x="{max(a, b) + 4:.1f}" y="{y + 16}" font-size="12">{value:+.3f}</text>')
    parts.append("</svg>")
    return "".join(parts)


def _shown(value, unit: str | None) -> str:
    if value is None:
        return "—"
    if isinstance(value, float):
        return f"{value:,.2f}" if unit == "yuan" else f"{value:.4g}"
    return str(value)


def _named(reason: dict, key: str) -> str:
    value = reason.get(key)
    if reason.get("unit") == "category" and value is not None:
        return category_name(reason["feature"], value)
    return _shown(value, reason.get("unit"))


def _reason_rows(items: list[dict]) -> str:
    return "".join(
        f"<tr><td>{html.escape(r['code'])}</td><td>{html.escape(r['zh'])}</td><td>{html.escape(r['en'])}</td>"
        f"<td>{html.escape(_named(r, 'value'))} {html.escape(r.get('unit') or '')}</td>"
        f"<td>{html.escape(_named(r, 'reference_value'))}</td>"
        f"<td>{r['contribution']:+.4f}</td></tr>" for r in items)


def _reference(reasons: dict) -> str:
    reference = reasons.get("reference")
    if not reference:  # decided before reasons were stated against a reference
        return "<p>基准为训练样本的平均 (the training set's mean, path-dependent contributions).</p>"
    return (f"<p><b>{html.escape(reference['zh'])}</b><br>{html.escape(reference['en'])}<br>"
            f"参照画像本身 the reference itself: PD {reference['pd']:.4f}, 等级 grade {html.escape(reference['grade'])}, "
            f"log-odds {reference['margin']:+.3f}. 每个因素的贡献是其在本企业与参照画像之差中所占的精确份额（Shapley 值），"
            f"各贡献之和等于两者对数几率之差。Each contribution is the feature's exact share (Shapley value) of the gap "
            f"between this enterprise and the reference; they add up to that gap.</p>")


def _advice(advice: dict | None, why: str | None) -> str:
    if advice is None:
        return f"<p>无建议 no advice: {html.escape(why or '')}</p>"
    steps = "".join(f"<li>{html.escape(a['code'])} · {'现在 now' if a['horizon'] == 'now' else '12个月 12 months'}"
                    f"{' · ¥' + format(a['amount_yuan'], ',.0f') if a['amount_yuan'] else ''}"
                    f"{'<br><small>法律依据 legal basis: ' + html.escape(a['legal_basis']) + '</small>' if a['legal_basis'] else ''}"
                    f"</li>" for a in advice["actions"])
    return (f"<p><b>{html.escape(advice['zh'])}</b><br>{html.escape(advice['en'])}</p><ul>{steps}</ul>"
            f"<p><small>假设其余记录保持不变，由作出该决策的模型重新评分。Re-scored by the model that made the decision, "
            f"the rest of the record unchanged: PD {advice['pd']:.4f}.</small></p>")


def render(decision: Decision, name: str | None, advice: dict | None = None, why: str | None = None) -> str:
    """The whole page (``advice`` as :meth:`models.advice.Advice.as_json` gives it, or None and ``why``)."""
    reasons = json.loads(decision.reasons)
    cited = {s for r in reasons["adverse"] + reasons["positive"] if r["feature"] in BY_NAME
             for s in BY_NAME[r["feature"]].sources}
    used = sorted({s for f in feature_names() for s in BY_NAME[f].sources}, key=list(SOURCES).index)
    sources = "".join(
        f"<tr{' class=cited' if s in cited else ''}><td>{html.escape(SOURCES[s].title_zh)}<br><small>{s}</small></td>"
        f"<td>{html.escape(SOURCES[s].department_zh)}</td><td>{html.escape(SOURCES[s].catalogue_category)}</td>"
        f"<td>{html.escape(SOURCES[s].legal_basis)}</td></tr>" for s in used)
    knockouts = "".join(f"<li><b>{html.escape(k['code'])}</b> {html.escape(k['zh'])} / {html.escape(k['en'])} → "
                        f"{html.escape(k['decision'])}<br><small>法律依据 legal basis: {html.escape(k['legal_basis'])}"
                        f"</small></li>" for k in reasons["knockouts"]) or "<li>无 none</li>"
    pd_ = decision.pd
    return with_linked_typeface(f"""<!doctype html><html lang="zh-CN"><head><meta charset="utf-8">
<title>决策说明 {html.escape(decision.request_id)}</title>
<style>body{{margin:24px;max-width:1000px}}
table{{border-collapse:collapse;margin:8px 0}} td,th{{border-bottom:1px solid #ddd;padding:3px 8px;text-align:left;vertical-align:top}}
tr.cited td{{background:#fff6e0}} .k{{color:#555}}</style></head><body>
<h1>预授信决策说明 · Pre-credit decision explained</h1>
<p><span class="k">企业 enterprise</span> {html.escape(name or '')} <b>{html.escape(decision.uscc)}</b> ·
<span class="k">决策 decision</span> <b>{html.escape(decision.decision)}</b> ·
<span class="k">等级 grade</span> <b>{html.escape(decision.grade)}</b> · PD {pd_:.4f} ·
<span class="k">评分 score</span> {decision.score:.1f} · <span class="k">额度 limit</span> CNY {decision.limit_yuan:,}</p>
<h2>参照 · Reference</h2>
{_reference(reasons)}
<h2>贡献瀑布图 · Contribution waterfall (log-odds of default, from the reference to this enterprise)</h2>
<p>红色推高违约风险，绿色降低违约风险。Red raises the odds of default, green lowers them.</p>
{waterfall_svg(reasons)}
<h2>改进建议 · What would change the decision</h2>
{_advice(advice, why)}
<h2>否决规则 · Knock-outs</h2><ul>{knockouts}</ul>
<h2>不利因素 · Adverse factors</h2>
<table><tr><th>code</th><th>中文</th><th>English</th><th>value</th><th>参照 reference</th><th>contribution</th></tr>{_reason_rows(reasons['adverse'])}</table>
<h2>有利因素 · Positive factors</h2>
<table><tr><th>code</th><th>中文</th><th>English</th><th>value</th><th>参照 reference</th><th>contribution</th></tr>{_reason_rows(reasons['positive'])}</table>
<h2>数据来源及法律依据 · Data sources and their legal basis</h2>
<p>Highlighted: the sources of the factors above.</p>
<table><tr><th>source</th><th>department</th><th>catalogue category</th><th>legal basis</th></tr>{sources}</table>
<h2>版本与审计 · Versions and audit</h2>
<table>
<tr><td>request id</td><td>{html.escape(decision.request_id)}</td></tr>
<tr><td>decided at (UTC)</td><td>{html.escape(decision.created_at)}</td></tr>
<tr><td>bank (client id)</td><td>{decision.client_id}</td></tr>
<tr><td>authorisation</td><td>{html.escape(decision.authorization_id)}</td></tr>
<tr><td>model version</td><td>{html.escape(decision.model_version)}</td></tr>
<tr><td>policy version</td><td>{html.escape(decision.policy_version)}</td></tr>
<tr><td>profile as of / feature set</td><td>{html.escape(decision.profile_as_of)} / {html.escape(decision.feature_set_version)}</td></tr>
<tr><td>chain position / hash</td><td>{decision.seq} / {html.escape(decision.hash)}</td></tr>
<tr><td>previous hash</td><td>{html.escape(decision.prev_hash)}</td></tr>
</table></body></html>""", TYPEFACE_PREFIX)
