"""The feature registry: every profile feature, declared once.

Each :class:`Feature` says what it measures in Chinese and English, where it comes from, over
which window, in which unit, which way it moves default risk (the model's monotone constraint),
and the legal basis that makes its use lawful (work plan item 2: the basis of the sources it is
computed from, as :mod:`features.schemas` declares them). The profile build must produce exactly
these columns (a test holds it to that); reason-code texts, the regulator's feature list,
``xyd features list`` and the models' monotone constraints are all read from here.

Windows. Event features (cases, penalties, grants) count what happened in the ``window_months``
before ``as_of`` (a month is 365/12 days). Monthly features (tax, utilities) use whole calendar
months ending at the **anchor month**: the newest month that every department has delivered by
``as_of``. A month's returns and bills arrive by the 24th of the month after, so the anchor is the
month before ``as_of``'s from the 24th on, and the month before that until then
(:func:`features.profile.pointintime.anchor_months`). The feature-set version is a hash of what this
registry gives a model (names, sources, windows, units, categories; not the words): a profile built
under one version is never mixed with one built under another.

Reason codes are declared by name in :data:`REASON_CODES`, never derived from a feature's place, so
adding a feature renumbers nothing and a stored decision's codes keep their meaning.
"""

from __future__ import annotations

import hashlib
import json
from dataclasses import asdict, dataclass

from features.schemas import DISTRICTS, ENTITY_KINDS, INDUSTRY_SECTIONS, SOURCES

DELIVERY_DAY = 24
"""A month's tax returns and utility bills are delivered by this day of the following month."""

MONTHLY_HISTORY = 24
"""Calendar months of monthly records a profile looks at (the anchor month and 23 before it)."""

DAYS_PER_MONTH = 365 / 12

FAMILIES = {  # family: (code prefix, 中文, English)
    "tax": ("TX", "纳税", "tax"),
    "utilities": ("UT", "水电气", "utilities"),
    "consistency": ("CS", "跨源一致性", "cross-source consistency"),
    "property": ("PR", "不动产", "real estate"),
    "ip": ("IP", "知识产权", "intellectual property"),
    "court": ("CT", "司法执行", "court enforcement"),
    "penalties": ("PN", "行政处罚", "administrative penalties"),
    "commitments": ("CM", "信用承诺", "credit commitments"),
    "firmographics": ("FM", "主体基本信息", "firmographics"),
    "coverage": ("CV", "数据覆盖", "data coverage"),
}

UNITS = ("yuan", "count", "share", "months", "days", "years", "log_ratio", "correlation", "flag",
         "category", "kWh", "m3", "grade_steps", "ratio")

KINDS = ("behaviour", "firmographic", "coverage")
"""What a feature describes: what the enterprise does, what it is, or what the platform holds of it."""

TAX_GRADES = ("A", "B", "M", "C", "D")
"""The tax credit levels from the safest to the riskiest. M (a newly established taxpayer without a
full year to evaluate, 国家税务总局公告2018年第8号) is ordered between B and C: less evidence than a B,
no finding against it as a C has."""
GRADE_POINTS = {"A": 4.0, "B": 3.0, "C": 2.0, "D": 1.0}
"""Ordinal points of the graded tax credit levels; M (a new taxpayer) is not graded."""


@dataclass(frozen=True)
class Feature:
    """One profile feature.

    ``monotone`` is the direction of default risk as the value grows: +1 riskier, -1 safer,
    0 no constraint (categories, and measures whose direction is not a matter of principle).
    A missing value (NaN) means the source holds nothing for the enterprise: absence is
    information, and is never written as zero. Counts from registers that cover every enterprise
    (courts, the dishonest list, penalties, commitments, real estate, IP) are 0 when the
    register holds nothing for it, since that is what the register says; every feature of a
    source the platform has never received is missing for everyone.
    """

    name: str
    family: str
    sources: tuple[str, ...]
    window_months: int | None
    zh: str
    en: str
    unit: str
    monotone: int
    categories: tuple[str, ...] = ()
    code: str = ""
    ordered: bool = False
    """Categories with a natural order, declared from the safest to the riskiest: the model reads
    them as ranks (0, 1, …) under the feature's monotone constraint; a missing value stays an
    absence, never a level."""
    kind: str = "behaviour"
    """What the feature describes (:data:`KINDS`): the enterprise's ``behaviour``, what the firm
    ``firmographic``-ally *is* (never a reason, never advice, its share shown apart), or the
    platform's ``coverage`` of a source (part of the absence logic, never a model input)."""

    def __post_init__(self) -> None:
        if self.family not in FAMILIES:
            raise ValueError(f"feature {self.name}: family must be one of {list(FAMILIES)}; got {self.family!r}")
        if self.unit not in UNITS:
            raise ValueError(f"feature {self.name}: unit must be one of {UNITS}; got {self.unit!r}")
        if self.monotone not in (-1, 0, 1):
            raise ValueError(f"feature {self.name}: monotone must be -1, 0 or 1; got {self.monotone}")
        unknown = [s for s in self.sources if s not in SOURCES]
        if unknown or not self.sources:
            raise ValueError(f"feature {self.name}: unknown sources {unknown or '(none)'}")
        if (self.unit == "category") != bool(self.categories):
            raise ValueError(f"feature {self.name}: a category feature needs categories, and only it")
        if self.categories and self.monotone and not self.ordered:
            raise ValueError(f"feature {self.name}: an unordered category feature cannot be monotone")
        if self.ordered and not self.categories:
            raise ValueError(f"feature {self.name}: only a category feature can be ordered")
        if self.kind not in KINDS:
            raise ValueError(f"feature {self.name}: kind must be one of {KINDS}; got {self.kind!r}")

    @property
    def is_categorical(self) -> bool:
        return bool(self.categories)

    @property
    def legal_basis(self) -> str:
        """The legal basis of every source the feature is computed from."""
        return "；".join(dict.fromkeys(SOURCES[s].legal_basis for s in self.sources))

    @property
    def catalogue_categories(self) -> tuple[str, ...]:
        """The public-credit-catalogue categories of its sources."""
        return tuple(dict.fromkeys(SOURCES[s].catalogue_category for s in self.sources))

    def as_json(self) -> dict:
        """Everything declared, plus the legal basis, for machines and the service."""
        out = asdict(self)
        out.update(sources=list(self.sources), categories=list(self.categories), legal_basis=self.legal_basis,
                   catalogue_categories=list(self.catalogue_categories))
        return out


def _f(name, family, sources, window, zh, en, unit, monotone, categories=(), ordered=False, kind=None) -> Feature:
    sources = (sources,) if isinstance(sources, str) else tuple(sources)
    kind = kind or {"firmographics": "firmographic", "coverage": "coverage"}.get(family, "behaviour")
    return Feature(name, family, sources, window, zh, en, unit, monotone, tuple(categories), ordered=ordered, kind=kind)


TAX, GRADES = "tax_filings", "tax_grades"
UTILITY_KINDS = {  # source: (prefix, 中文, English, usage unit)
    "electricity": ("elec", "用电", "electricity", "kWh"),
    "water": ("water", "用水", "water", "m3"),
    "gas": ("gas", "用气", "gas", "m3"),
}


def _tax() -> list[Feature]:
    out = [_f(f"tax_sales_{n}m", "tax", TAX, n, f"近{n}个月申报销售额合计", f"taxable sales over the last {n} months",
              "yuan", -1) for n in (3, 6, 12, 24)]
    return out + [
        _f("tax_sales_growth_12m", "tax", TAX, 24, "近12个月销售额较前12个月增长（对数比）",
           "growth of sales, last 12 months over the 12 before (log ratio)", "log_ratio", -1),
        _f("tax_sales_growth_3m_yoy", "tax", TAX, 15, "近3个月销售额同比增长（对数比，剔除季节）",
           "sales of the last 3 months against the same months a year earlier (log ratio, seasonally adjusted)",
           "log_ratio", -1),
        _f("tax_sales_volatility_12m", "tax", TAX, 12, "近12个月月度销售额变异系数",
           "coefficient of variation of monthly sales over the last 12 months", "ratio", 1),
        _f("tax_months_filed_12m", "tax", TAX, 12, "近12个月申报月数（成立前的月份不计为未申报）",
           "months with a tax return in the last 12 (months before the enterprise existed count as filed)",
           "months", -1),
        _f("tax_months_late_12m", "tax", TAX, 12, "近12个月逾期申报月数", "months filed late in the last 12",
           "months", 1),
        _f("tax_late_share_12m", "tax", TAX, 12, "近12个月逾期申报占比", "share of the last 12 months' returns filed late",
           "share", 1),
        _f("tax_months_in_arrears_12m", "tax", TAX, 12, "近12个月欠税月数", "months with tax arrears in the last 12",
           "months", 1),
        _f("tax_arrears_latest", "tax", TAX, MONTHLY_HISTORY, "最近一期欠税金额", "tax arrears in the latest return",
           "yuan", 1),
        _f("tax_arrears_12m", "tax", TAX, 12, "近12个月欠税金额合计", "tax arrears summed over the last 12 months",
           "yuan", 1),
        _f("tax_paid_12m", "tax", TAX, 12, "近12个月已缴税额合计", "tax paid over the last 12 months", "yuan", -1),
        _f("tax_sales_momentum_3m", "tax", TAX, MONTHLY_HISTORY, "近3个月月均销售额相对近24个月月均的对数比",
           "mean monthly sales of the last 3 months against that of the last 24 (log ratio)", "log_ratio", -1),
        _f("tax_months_late_24m", "tax", TAX, 24, "近24个月逾期申报月数", "months filed late in the last 24",
           "months", 1),
        _f("tax_months_in_arrears_24m", "tax", TAX, 24, "近24个月欠税月数", "months with tax arrears in the last 24",
           "months", 1),
        _f("tax_arrears_share_3m", "tax", TAX, 3, "近3个月欠税占应缴税额比例",
           "share of the tax due over the last 3 months left unpaid", "share", 1),
        _f("tax_arrears_share_24m", "tax", TAX, 24, "近24个月欠税占应缴税额比例",
           "share of the tax due over the last 24 months left unpaid", "share", 1),
        _f("tax_months_since_last_filing", "tax", TAX, None, "距最近一次申报的月数",
           "months from the latest return to the anchor month", "months", 1),
        _f("tax_grade_latest", "tax", GRADES, None, "最新纳税信用级别", "latest tax credit grade", "category", 1,
           TAX_GRADES, ordered=True),
        _f("tax_grade_is_a", "tax", GRADES, None, "最新纳税信用级别为A级", "latest tax credit grade is A", "flag", -1),
        _f("tax_grade_is_c_or_d", "tax", GRADES, None, "最新纳税信用级别为C级或D级",
           "latest tax credit grade is C or D", "flag", 1),
        _f("tax_grade_change", "tax", GRADES, None, "纳税信用级别较上一年度变化（升为正）",
           "change of the tax credit grade since the year before (up is positive)", "grade_steps", -1),
        _f("tax_grade_a_years_3y", "tax", GRADES, 36, "最近三个评价年度中A级的次数",
           "A grades among the latest three evaluated years", "count", -1),
    ]


def _utilities() -> list[Feature]:
    out = []
    for source, (p, zh, en, unit) in UTILITY_KINDS.items():
        out += [
            _f(f"{p}_usage_12m", "utilities", source, 12, f"近12个月{zh}量", f"{en} used over the last 12 months",
               unit, -1),
            _f(f"{p}_usage_trend_yoy", "utilities", source, 15, f"近3个月{zh}量同比变化（对数比，剔除季节）",
               f"{en} use of the last 3 months against the same months a year earlier (log ratio)", "log_ratio", -1),
            _f(f"{p}_continuity_12m", "utilities", source, 24, f"近12个月{zh}连续性（不低于上年同月一半的月份占比）",
               f"share of the last 12 months using at least half the {en} of the same month a year earlier",
               "share", -1),
            _f(f"{p}_months_without_use_12m", "utilities", source, 12, f"近12个月无{zh}或无账单月数",
               f"months without {en} use or bill in the last 12 (since the first bill)", "months", 1),
            _f(f"{p}_arrears_latest", "utilities", source, MONTHLY_HISTORY, f"最近一期{zh}欠费金额",
               f"{en} arrears on the latest bill", "yuan", 1),
            _f(f"{p}_months_in_arrears_12m", "utilities", source, 12, f"近12个月{zh}欠费月数",
               f"months with {en} arrears in the last 12", "months", 1),
            _f(f"{p}_months_in_arrears_24m", "utilities", source, 24, f"近24个月{zh}欠费月数",
               f"months with {en} arrears in the last 24", "months", 1),
            _f(f"{p}_arrears_share_3m", "utilities", source, 3, f"近3个月{zh}欠费占账单金额比例",
               f"share of the {en} billed over the last 3 months left unpaid", "share", 1),
            _f(f"{p}_arrears_share_24m", "utilities", source, 24, f"近24个月{zh}欠费占账单金额比例",
               f"share of the {en} billed over the last 24 months left unpaid", "share", 1),
            _f(f"{p}_usage_momentum_3m", "utilities", source, MONTHLY_HISTORY,
               f"近3个月月均{zh}量相对近24个月月均的对数比",
               f"mean monthly {en} of the last 3 months against that of the last 24 (log ratio)", "log_ratio", -1),
        ]
    return out


def _consistency() -> list[Feature]:
    return [
        _f("sales_electricity_corr_12m", "consistency", (TAX, "electricity"), 12,
           "近12个月销售额与用电量的相关系数", "correlation of monthly sales and electricity over the last 12 months",
           "correlation", -1),
        _f("sales_electricity_trend_gap", "consistency", (TAX, "electricity"), 15,
           "销售额同比与用电量同比之差的绝对值", "gap between the year-on-year trends of sales and of electricity",
           "log_ratio", 1),
        _f("sources_in_arrears", "consistency", (TAX, "electricity", "water", "gas"), MONTHLY_HISTORY,
           "最近一期存在欠税或欠费的来源数", "sources (tax, electricity, water, gas) in arrears on the latest record",
           "count", 1),
    ]


def _property() -> list[Feature]:
    src = "real_estate"
    return [
        _f("property_count", "property", src, None, "名下不动产数量", "properties registered to the enterprise", "count", -1),
        _f("property_appraised_value", "property", src, None, "名下不动产评估价值合计", "appraised value of its properties",
           "yuan", -1),
        _f("property_mortgaged_share", "property", src, None, "处于抵押状态的不动产价值占比",
           "share of property value under a mortgage now", "share", 1),
        _f("property_seized_share", "property", src, None, "被法院查封的不动产价值占比",
           "share of property value seized by a court now", "share", 1),
        _f("property_mortgages_12m", "property", src, 12, "近12个月新办抵押登记数",
           "mortgages registered in the last 12 months", "count", 0),
    ]


def _ip() -> list[Feature]:
    src = "intellectual_property"
    return [
        _f("ip_invention_patents", "ip", src, None, "有效发明专利数", "invention patents in force", "count", -1),
        _f("ip_utility_models", "ip", src, None, "有效实用新型专利数", "utility-model patents in force", "count", -1),
        _f("ip_design_patents", "ip", src, None, "有效外观设计专利数", "design patents in force", "count", -1),
        _f("ip_patents_granted_24m", "ip", src, 24, "近24个月新授权专利数", "patents granted in the last 24 months",
           "count", -1),
        _f("ip_trademarks", "ip", src, None, "有效注册商标数", "registered trademarks in force", "count", -1),
        _f("ip_software_copyrights", "ip", src, None, "软件著作权数", "software copyrights in force", "count", -1),
        _f("ip_pledged", "ip", src, None, "处于质押状态的知识产权数", "rights in force that are pledged", "count", 0),
        _f("ip_lapsed_24m", "ip", src, 24, "近24个月失效的知识产权数", "rights that lapsed in the last 24 months",
           "count", 1),
    ]


def _court() -> list[Feature]:
    cases, listed = "court_executions", "dishonest_debtors"
    return [
        _f("court_open_cases", "court", cases, None, "未结被执行案件数", "enforcement cases open now", "count", 1),
        _f("court_open_amount", "court", cases, None, "未结被执行案件执行标的合计", "amount of the open enforcement cases",
           "yuan", 1),
        _f("court_cases_24m", "court", cases, 24, "近24个月被执行立案数", "enforcement cases filed in the last 24 months",
           "count", 1),
        _f("court_amount_24m", "court", cases, 24, "近24个月被执行标的合计",
           "amount of the enforcement cases filed in the last 24 months", "yuan", 1),
        _f("court_cases_total", "court", cases, None, "历史被执行案件数", "enforcement cases ever filed", "count", 1),
        _f("court_days_since_last_case", "court", cases, None, "距最近一次被执行立案的天数",
           "days since the latest enforcement case was filed", "days", -1),
        _f("dishonest_listed_now", "court", listed, None, "当前在失信被执行人名单中",
           "on the dishonest-debtor list now", "flag", 1),
        _f("dishonest_listings_24m", "court", listed, 24, "近24个月列入失信被执行人名单次数（已移除的不计）",
           "listings as a dishonest debtor in the last 24 months (removed listings excluded)", "count", 1),
    ]


def _penalties() -> list[Feature]:
    src = "administrative_penalties"
    return [
        _f("penalty_count_12m", "penalties", src, 12, "近12个月行政处罚次数（已修复的不计）",
           "administrative penalties in the last 12 months (repaired ones excluded)", "count", 1),
        _f("penalty_count_36m", "penalties", src, 36, "近36个月行政处罚次数（已修复的不计）",
           "administrative penalties in the last 36 months (repaired ones excluded)", "count", 1),
        _f("penalty_serious_36m", "penalties", src, 36, "近36个月较重及严重失信行政处罚次数",
           "serious or severe penalties in the last 36 months (repaired ones excluded)", "count", 1),
        _f("penalty_minor_36m", "penalties", src, 36, "近36个月轻微及一般失信行政处罚次数",
           "minor or general penalties in the last 36 months (repaired ones excluded)", "count", 1),
        _f("penalty_amount_36m", "penalties", src, 36, "近36个月罚款金额合计",
           "fines in the last 36 months (repaired ones excluded)", "yuan", 1),
        _f("penalty_days_since_last", "penalties", src, None, "距最近一次行政处罚的天数",
           "days since the latest penalty that still counts", "days", -1),
    ]


def _commitments() -> list[Feature]:
    src = "credit_commitments"
    return [
        _f("commitment_count_24m", "commitments", src, 24, "近24个月作出的信用承诺数",
           "credit commitments made in the last 24 months", "count", 0),
        _f("commitment_kept_24m", "commitments", src, 24, "近24个月已核查践诺的承诺数",
           "commitments of the last 24 months verified as kept", "count", -1),
        _f("commitment_broken_24m", "commitments", src, 24, "近24个月核查违诺的承诺数",
           "commitments of the last 24 months verified as broken", "count", 1),
        _f("commitment_kept_share_24m", "commitments", src, 24, "近24个月已核查承诺中践诺占比",
           "share kept among the last 24 months' verified commitments", "share", -1),
        _f("commitment_pending", "commitments", src, None, "待核查的承诺数", "commitments awaiting verification",
           "count", 0),
    ]


def _firmographics() -> list[Feature]:
    src = "enterprise_registry"
    return [
        _f("firm_age_years", "firmographics", src, None, "成立年限", "years since establishment", "years", -1),
        _f("entity_type", "firmographics", src, None, "主体类型", "kind of market entity", "category", 0,
           [v.code for v in ENTITY_KINDS]),
        _f("industry_section", "firmographics", src, None, "行业门类（GB/T 4754-2017）",
           "industry section (GB/T 4754-2017)", "category", 0, [v.code for v in INDUSTRY_SECTIONS]),
        _f("district_code", "firmographics", src, None, "所属区县", "county-level district", "category", 0,
           [v.code for v in DISTRICTS]),
        _f("registered_capital", "firmographics", src, None, "注册资本", "registered capital", "yuan", -1),
    ]


COVERED_SOURCES = {  # coverage flag: source
    "has_tax_filings": TAX, "has_tax_grade": GRADES, "has_electricity": "electricity", "has_water": "water",
    "has_gas": "gas", "has_real_estate": "real_estate", "has_intellectual_property": "intellectual_property",
    "has_court_record": "court_executions", "has_commitments": "credit_commitments",
}


def _coverage() -> list[Feature]:
    out = [_f(name, "coverage", source, None, f"平台持有其{SOURCES[source].title_zh}",
              f"the platform holds {SOURCES[source].title_en} for it", "flag", 0)
           for name, source in COVERED_SOURCES.items()]
    return out + [_f("sources_covered", "coverage", tuple(COVERED_SOURCES.values()), None,
                     "平台持有记录的数据来源数", "sources holding any record of it", "count", 0)]


REASON_CODES: dict[str, str] = {
    # tax
    "tax_sales_3m": "TX01", "tax_sales_6m": "TX02", "tax_sales_12m": "TX03", "tax_sales_24m": "TX04",
    "tax_sales_growth_12m": "TX05", "tax_sales_growth_3m_yoy": "TX06", "tax_sales_volatility_12m": "TX07",
    "tax_months_filed_12m": "TX08", "tax_months_late_12m": "TX09", "tax_late_share_12m": "TX10",
    "tax_months_in_arrears_12m": "TX11", "tax_arrears_latest": "TX12", "tax_arrears_12m": "TX13",
    "tax_paid_12m": "TX14", "tax_sales_momentum_3m": "TX15", "tax_months_late_24m": "TX16",
    "tax_months_in_arrears_24m": "TX17", "tax_arrears_share_3m": "TX18", "tax_arrears_share_24m": "TX19",
    "tax_months_since_last_filing": "TX20", "tax_grade_latest": "TX21", "tax_grade_is_a": "TX22",
    "tax_grade_is_c_or_d": "TX23", "tax_grade_change": "TX24", "tax_grade_a_years_3y": "TX25",
    # utilities
    "elec_usage_12m": "UT01", "elec_usage_trend_yoy": "UT02", "elec_continuity_12m": "UT03",
    "elec_months_without_use_12m": "UT04", "elec_arrears_latest": "UT05", "elec_months_in_arrears_12m": "UT06",
    "elec_months_in_arrears_24m": "UT07", "elec_arrears_share_3m": "UT08", "elec_arrears_share_24m": "UT09",
    "elec_usage_momentum_3m": "UT10", "water_usage_12m": "UT11", "water_usage_trend_yoy": "UT12",
    "water_continuity_12m": "UT13", "water_months_without_use_12m": "UT14", "water_arrears_latest": "UT15",
    "water_months_in_arrears_12m": "UT16", "water_months_in_arrears_24m": "UT17",
    "water_arrears_share_3m": "UT18", "water_arrears_share_24m": "UT19", "water_usage_momentum_3m": "UT20",
    "gas_usage_12m": "UT21", "gas_usage_trend_yoy": "UT22", "gas_continuity_12m": "UT23",
    "gas_months_without_use_12m": "UT24", "gas_arrears_latest": "UT25", "gas_months_in_arrears_12m": "UT26",
    "gas_months_in_arrears_24m": "UT27", "gas_arrears_share_3m": "UT28", "gas_arrears_share_24m": "UT29",
    "gas_usage_momentum_3m": "UT30",
    # consistency
    "sales_electricity_corr_12m": "CS01", "sales_electricity_trend_gap": "CS02", "sources_in_arrears": "CS03",
    # property
    "property_count": "PR01", "property_appraised_value": "PR02", "property_mortgaged_share": "PR03",
    "property_seized_share": "PR04", "property_mortgages_12m": "PR05",
    # ip
    "ip_invention_patents": "IP01", "ip_utility_models": "IP02", "ip_design_patents": "IP03",
    "ip_patents_granted_24m": "IP04", "ip_trademarks": "IP05", "ip_software_copyrights": "IP06",
    "ip_pledged": "IP07", "ip_lapsed_24m": "IP08",
    # court
    "court_open_cases": "CT01", "court_open_amount": "CT02", "court_cases_24m": "CT03",
    "court_amount_24m": "CT04", "court_cases_total": "CT05", "court_days_since_last_case": "CT06",
    "dishonest_listed_now": "CT07", "dishonest_listings_24m": "CT08",
    # penalties
    "penalty_count_12m": "PN01", "penalty_count_36m": "PN02", "penalty_serious_36m": "PN03",
    "penalty_minor_36m": "PN04", "penalty_amount_36m": "PN05", "penalty_days_since_last": "PN06",
    # commitments
    "commitment_count_24m": "CM01", "commitment_kept_24m": "CM02", "commitment_broken_24m": "CM03",
    "commitment_kept_share_24m": "CM04", "commitment_pending": "CM05",
    # firmographics
    "firm_age_years": "FM01", "entity_type": "FM02", "industry_section": "FM03", "district_code": "FM04",
    "registered_capital": "FM05",
    # coverage
    "has_tax_filings": "CV01", "has_tax_grade": "CV02", "has_electricity": "CV03", "has_water": "CV04",
    "has_gas": "CV05", "has_real_estate": "CV06", "has_intellectual_property": "CV07", "has_court_record": "CV08",
    "has_commitments": "CV09", "sources_covered": "CV10",
}
"""Every feature's reason code, declared by name, never by place. A code is the one thing a bank's
stored decision, a regulator's report and monitoring keep of a reason, so once given it is never
changed and never reused: a new feature takes the next free number of its family's prefix, and a
removed feature's code moves to :data:`RETIRED_CODES`."""

RETIRED_CODES: dict[str, str] = {}
"""Codes of features no longer computed (code: the feature it named). They stay taken for ever."""

def _with_codes(features: list[Feature], codes: dict[str, str] = REASON_CODES,
                retired: dict[str, str] = RETIRED_CODES) -> tuple[Feature, ...]:
    """Give every feature its declared reason code (:data:`REASON_CODES`), refusing, in words, a
    feature without one, a code of another family's prefix, a code given twice or one retired."""
    out, given = [], {}
    for f in features:
        prefix = FAMILIES[f.family][0]
        if f.name not in codes:
            taken = [int(c[2:]) for c in [*codes.values(), *retired] if c.startswith(prefix) and c[2:].isdigit()]
            raise ValueError(f"feature {f.name} has no reason code: declare it in REASON_CODES "
                             f"(the next free code of family {f.family} is {prefix}{max(taken, default=0) + 1:02d})")
        code = codes[f.name]
        if not (code.startswith(prefix) and code[len(prefix):].isdigit()):
            raise ValueError(f"feature {f.name}: reason code {code!r} must be {prefix} and a number (family {f.family})")
        if code in retired:
            raise ValueError(f"feature {f.name}: reason code {code} is retired (it named {retired[code]}) and is never reused")
        if code in given:
            raise ValueError(f"feature {f.name}: reason code {code} is already {given[code]}'s")
        given[code] = f.name
        out.append(Feature(**{**asdict(f), "code": code}))
    stale = sorted(set(codes) - {f.name for f in features})
    if stale:
        raise ValueError(f"REASON_CODES names features the registry does not declare: {stale}; "
                         f"move a removed feature's code to RETIRED_CODES")
    return tuple(out)


FEATURES: tuple[Feature, ...] = _with_codes(
    _tax() + _utilities() + _consistency() + _property() + _ip() + _court() + _penalties() + _commitments()
    + _firmographics() + _coverage())
"""Every profile feature, in profile column order."""

BY_NAME: dict[str, Feature] = {f.name: f for f in FEATURES}
if len(BY_NAME) != len(FEATURES):
    raise ValueError("the feature registry declares a name twice")

KEY_COLUMNS = ("uscc", "as_of")
"""The columns before the features in every profile row."""

ENGINE_VERSION = "1"
"""Bumped when a feature's computation changes without its declaration changing."""


def feature_names() -> list[str]:
    """Profile feature columns, in order."""
    return [f.name for f in FEATURES]


def features_of_kind(kind: str) -> tuple[str, ...]:
    """The names of the features of one :data:`KINDS` kind, in registry order."""
    if kind not in KINDS:
        raise ValueError(f"kind must be one of {KINDS}; got {kind!r}")
    return tuple(f.name for f in FEATURES if f.kind == kind)


def model_features() -> list[str]:
    """The features a model may read: every one but the coverage flags. Whether the platform holds
    a source is already in its features (missing, or a register's zero count), and a flag the model
    read would be a reason of its own ("holds court cases: yes") that says nothing of behaviour."""
    return [f.name for f in FEATURES if f.kind != "coverage"]


def get_feature(name: str) -> Feature:
    """The feature called ``name``, or a ValueError naming the families to look in."""
    try:
        return BY_NAME[name]
    except KeyError:
        raise ValueError(f"unknown feature {name!r}; `xyd features list` shows the {len(FEATURES)} there are") from None


MODEL_INPUT_FIELDS = ("name", "sources", "window_months", "unit", "categories", "ordered", "kind")
"""What of a declaration changes the profile a model reads: which column, computed from what, over
which window, in which unit and categories, and whether a model may read it. Words (``zh``, ``en``),
codes, families and monotone constraints (which bind training, and each bundle keeps its own) do not."""


def feature_set_version(features: tuple[Feature, ...] | None = None) -> str:
    """A short hash of what the features give a model (:data:`MODEL_INPUT_FIELDS`, in column order)
    and the engine version: profiles built under different versions are different things and are
    never mixed. Editing a description never changes it, so it never refuses a decision."""
    declared = [{field: getattr(f, field) for field in MODEL_INPUT_FIELDS} for f in features or FEATURES]
    payload = json.dumps({"engine": ENGINE_VERSION, "features": declared}, ensure_ascii=False, sort_keys=True)
    return hashlib.sha256(payload.encode("utf-8")).hexdigest()[:12]


def monotone_constraints(names: list[str] | None = None) -> list[int]:
    """LightGBM's ``monotone_constraints`` for the given features (all, by default), in order."""
    return [get_feature(n).monotone for n in (names or feature_names())]


CATEGORY_NAMES = {"district_code": DISTRICTS, "industry_section": INDUSTRY_SECTIONS, "entity_type": ENTITY_KINDS}
"""The categorical features whose codes have names a person reads instead (features.schemas)."""


def category_name(feature: str, value) -> str:
    """A category as a person reads it, its code beside the name: ``西陵区 Xiling (420502)``,
    ``C 制造业 manufacturing``. Codes without a declared name are returned as they are."""
    for item in CATEGORY_NAMES.get(feature, ()):
        if str(value) == item.code:
            if len(item.code) == 1:  # industry sections are read as their letter first
                return f"{item.code} {item.zh} {item.en}"
            return f"{item.zh} {item.en} ({item.code})"
    return str(value)


def registry_markdown() -> str:
    """The registry as a Markdown table, for docs and the regulator."""
    lines = ["| code | feature | family | 中文 | English | unit | window (months) | risk as it grows | sources |",
             "|---|---|---|---|---|---|---|---|---|"]
    direction = {1: "higher", -1: "lower", 0: "—"}
    for f in FEATURES:
        lines.append(f"| {f.code} | `{f.name}` | {f.family} | {f.zh} | {f.en} | {f.unit} | {f.window_months or '—'} | "
                     f"{direction[f.monotone]} | {', '.join(f.sources)} |")
    return "\n".join(lines)


# ---------------------------------------------------------------------- actionable features
#
# What an enterprise can lawfully do about its record, declared beside the features it changes
# (read by models.advice). A feature no action changes is not actionable: firm age, district,
# industry, entity type, registered capital, the data-coverage flags, history already reported
# (months filed late, past cases, granted patents) and whatever else only time or the past sets.
# An action never goes beyond the record: it applies only where the record shows the problem it
# fixes, and it moves each feature it touches to what the record would then say (arrears paid
# are zero on the next bill; a judgment performed closes the case and, by law, lifts the
# dishonest listing; a penalty repaired after its publicity period no longer counts).

BASIS_CREDIT_REPAIR = "《失信行为纠正后的信用信息修复管理办法（试行）》（国家发展和改革委员会第58号令）"
BASIS_DISHONEST_REMOVAL = "《最高人民法院关于公布失信被执行人名单信息的若干规定》第十条（已履行生效法律文书确定的义务的，删除失信信息）"


@dataclass(frozen=True)
class Action:
    """Something an enterprise can do that changes its profile, and how.

    ``when``: conditions (feature, operator, threshold) the record must meet for the action to
    apply. ``sets``: feature → value after the action (None: no record, as in the profile).
    ``lowers``: count features that fall by one (never below zero). ``amount``: the feature whose
    value the texts quote as ``{amount}`` (yuan). ``horizon``: "now", or "12m" for an action that
    takes a year of keeping to (the texts say so)."""

    code: str
    zh: str
    en: str
    when: tuple[tuple[str, str, float], ...]
    sets: tuple[tuple[str, float | None], ...]
    lowers: tuple[str, ...] = ()
    amount: str | None = None
    horizon: str = "now"
    legal_basis: str = ""
    needs: tuple[str, ...] = ()
    """Actions that must come with this one wherever they apply (a year of paying in full
    starts by paying what is owed now)."""
    supplies: str | None = None
    """A source the action lets the platform hold (the enterprise authorises a department to share
    it): not a change of behaviour but of what the platform can judge. Advice re-scores it with the
    source's features at the values of the typical approved borrower of the enterprise's kind that
    holds that source (:func:`models.bundle.reference_for`'s ``supplied``), and says so."""

    @property
    def features(self) -> tuple[str, ...]:
        """Every feature the action changes."""
        return tuple(dict.fromkeys([*(f for f, _ in self.sets), *self.lowers]))


def _pay_arrears(code: str, prefix: str, arrears_zh: str, source_en: str) -> Action:
    return Action(code, f"结清当前{arrears_zh} {{amount}}", f"pay the {source_en} arrears of {{amount}}",
                  when=((f"{prefix}_arrears_latest", ">", 0.0),),
                  sets=((f"{prefix}_arrears_latest", 0.0), (f"{prefix}_arrears_share_3m", 0.0)),
                  lowers=("sources_in_arrears",), amount=f"{prefix}_arrears_latest")


ACTIONS: tuple[Action, ...] = (
    _pay_arrears("AC01", "tax", "欠税", "tax"),
    _pay_arrears("AC02", "elec", "电费欠费", "electricity"),
    _pay_arrears("AC03", "water", "水费欠费", "water"),
    _pay_arrears("AC04", "gas", "燃气费欠费", "gas"),
    Action("AC05", "履行法院执行案件确定的义务 {amount}，结案并移出失信名单",
           "perform the court enforcement cases of {amount}, which closes them and lifts any dishonest listing",
           when=(("court_open_cases", ">", 0.0),),
           sets=(("court_open_cases", 0.0), ("court_open_amount", 0.0), ("dishonest_listed_now", 0.0)),
           amount="court_open_amount", legal_basis=BASIS_DISHONEST_REMOVAL),
    Action("AC10", "履行生效法律文书确定的义务，申请法院删除失信被执行人信息",
           "perform what the judgement requires and ask the court to remove the dishonest-debtor listing",
           when=(("dishonest_listed_now", ">=", 1.0), ("court_open_cases", "==", 0.0)),
           sets=(("dishonest_listed_now", 0.0),), legal_basis=BASIS_DISHONEST_REMOVAL),
    Action("AC06", "对公示期满的一般行政处罚申请信用修复", "apply for credit repair of the minor penalties past their publicity period",
           when=(("penalty_count_36m", ">", 0.0), ("penalty_serious_36m", "==", 0.0),
                 ("penalty_days_since_last", ">=", 90.0)),
           sets=(("penalty_count_12m", 0.0), ("penalty_count_36m", 0.0), ("penalty_minor_36m", 0.0),
                 ("penalty_amount_36m", 0.0), ("penalty_days_since_last", None)),
           legal_basis=BASIS_CREDIT_REPAIR),
    Action("AC07", "对公示期满的全部行政处罚（含严重失信）申请信用修复",
           "apply for credit repair of every penalty, serious ones included, past its publicity period",
           when=(("penalty_serious_36m", ">", 0.0), ("penalty_days_since_last", ">=", 365.0)),
           sets=(("penalty_count_12m", 0.0), ("penalty_count_36m", 0.0), ("penalty_minor_36m", 0.0),
                 ("penalty_serious_36m", 0.0), ("penalty_amount_36m", 0.0), ("penalty_days_since_last", None)),
           legal_basis=BASIS_CREDIT_REPAIR),
    Action("AC08", "未来12个月按期申报纳税", "file every tax return on time for the next 12 months",
           when=(("tax_months_late_12m", ">", 0.0),),
           sets=(("tax_months_late_12m", 0.0), ("tax_late_share_12m", 0.0)), horizon="12m"),
    Action("AC09", "未来12个月按期缴清税款", "pay every month's tax in full for the next 12 months",
           when=(("tax_months_in_arrears_12m", ">", 0.0),),
           sets=(("tax_months_in_arrears_12m", 0.0), ("tax_arrears_12m", 0.0), ("tax_arrears_share_3m", 0.0)),
           horizon="12m", needs=("AC01",)),
    Action("DA01", "授权平台向税务部门调取本企业的纳税申报信息（银税互动）",
           "authorise the platform to obtain its tax returns from the tax bureau (bank-tax interaction)",
           when=(("has_tax_filings", "==", 0.0),), sets=(), supplies=TAX,
           legal_basis="《国务院办公厅关于加强信用信息共享应用促进中小微企业融资的实施方案》（国办发〔2021〕52号）（经企业授权共享纳税信息）"),
    Action("DA02", "授权平台向供电公司调取本企业的用电信息",
           "authorise the platform to obtain its electricity bills from the power company",
           when=(("has_electricity", "==", 0.0),), sets=(), supplies="electricity",
           legal_basis="《国务院办公厅关于加强信用信息共享应用促进中小微企业融资的实施方案》（国办发〔2021〕52号）（经企业授权共享水电气费信息）"),
)
"""The actions advice may suggest (:mod:`models.advice`): changes of behaviour (AC…) and data the
enterprise can let the platform hold (DA…)."""


def actionable_features() -> set[str]:
    """Features some action changes; every other feature is not actionable."""
    return {f for action in ACTIONS for f in action.features}


# ---------------------------------------------------------------------- encouraged behaviour
#
# What the city encourages (work plan items 15 and 17: credit commitments, innovation, tax
# honesty), declared as a change to the *records*, the way it happens in life: a right granted, a
# commitment made, a grade raised. ``moves`` lists every feature the new record may change and the
# way it moves (+1 up, -1 down: for an ordered category, towards its later levels); a test rebuilds
# profiles from the changed records and holds the declaration to what really changes. The policy
# names the actions it encourages (``[fair_use] encouraged``); the PD model may then only fall as
# each moved feature moves (models.policy.Policy.monotone), and the capacity model does not read them
# (models.train.fit_bundle), so no encouraged behaviour can raise a PD or lower a limit.


@dataclass(frozen=True)
class Encouraged:
    """A behaviour the city encourages, as the record it adds or changes.

    ``source``: the lake source the record belongs to. ``record``: the new record's columns (values
    "as_of" and "never" are the day of the profile and no date at all); ``regrade``: instead of a
    new record, the latest evaluated year's grade becomes this one (a grade raised)."""

    code: str
    zh: str
    en: str
    source: str
    moves: tuple[tuple[str, int], ...]
    record: tuple[tuple[str, object], ...] = ()
    regrade: str | None = None

    @property
    def features(self) -> tuple[str, ...]:
        return tuple(f for f, _ in self.moves)


def _new_right(code: str, ip_type: str, zh: str, en: str, counts: tuple[str, ...]) -> Encouraged:
    return Encouraged(code, f"新获一项{zh}", f"a new {en} granted", "intellectual_property",
                      moves=tuple((f, 1) for f in (*counts, "has_intellectual_property", "sources_covered")),
                      record=(("ip_type", ip_type), ("application_date", "as_of"), ("grant_date", "as_of"),
                              ("lapse_date", "never"), ("pledge_date", "never")))


ENCOURAGED: tuple[Encouraged, ...] = (
    _new_right("EN01", "invention_patent", "发明专利授权", "invention patent", ("ip_invention_patents", "ip_patents_granted_24m")),
    _new_right("EN02", "utility_model", "实用新型专利授权", "utility-model patent", ("ip_utility_models", "ip_patents_granted_24m")),
    _new_right("EN03", "design_patent", "外观设计专利授权", "design patent", ("ip_design_patents", "ip_patents_granted_24m")),
    _new_right("EN04", "trademark", "注册商标", "registered trademark", ("ip_trademarks",)),
    _new_right("EN05", "software_copyright", "软件著作权登记", "software copyright", ("ip_software_copyrights",)),
    Encouraged("EN06", "作出一项信用承诺", "a new credit commitment made", "credit_commitments",
               moves=(("commitment_count_24m", 1), ("commitment_pending", 1), ("has_commitments", 1),
                      ("sources_covered", 1)),
               record=(("commitment_date", "as_of"), ("status", "pending"), ("verified_date", "never"))),
    Encouraged("EN07", "纳税信用级别升为A级", "the tax credit grade raised to A", "tax_grades",
               moves=(("tax_grade_latest", -1), ("tax_grade_is_a", 1), ("tax_grade_is_c_or_d", -1),
                      ("tax_grade_change", 1), ("tax_grade_a_years_3y", 1)),
               regrade="A"),
)
"""Every behaviour the policy may encourage (``[fair_use] encouraged`` names them by code)."""

ENCOURAGED_BY_CODE = {e.code: e for e in ENCOURAGED}


# ---------------------------------------------------------------------- what absence means
#
# A missing value is a fact about the record, not a behaviour of the enterprise. Where a source
# holds nothing for an enterprise (its coverage flag is 0), every feature of that source is
# missing for the same reason, said once, in the words of SOURCE_ABSENCE. Where the source does
# hold records but a figure cannot be computed (too short a history, nothing due in the window,
# no event to date), FEATURE_ABSENCE says why. Reasons name absences in these words
# (models.explain), never as the feature's behaviour.

SOURCE_ABSENCE = {  # source: (中文, English): what its coverage flag at 0 means
    TAX: ("平台未掌握该企业的纳税申报记录（薄档案）", "thin file: the platform holds no tax returns for this enterprise"),
    GRADES: ("平台未掌握该企业的纳税信用评价", "the platform holds no tax credit grade for this enterprise"),
    "electricity": ("平台未掌握该企业的用电账户记录", "no electricity account of this enterprise is known to the platform"),
    "water": ("平台未掌握该企业的用水账户记录", "no water account of this enterprise is known to the platform"),
    "gas": ("平台未掌握该企业的用气账户记录", "no gas account of this enterprise is known to the platform"),
    "real_estate": ("不动产登记中无该企业名下的不动产", "the real-estate register holds no property of this enterprise"),
    "intellectual_property": ("知识产权登记中无该企业的有效权利",
                              "the intellectual-property registers hold no right of this enterprise"),
    "court_executions": ("法院执行信息中无该企业的被执行记录", "the courts' enforcement records hold no case against it"),
    "credit_commitments": ("该企业未在平台作出信用承诺", "the enterprise has made no credit commitment on the platform"),
}


def _utility_absences() -> dict[str, tuple[str, str]]:
    out = {}
    for p, zh, en, _ in UTILITY_KINDS.values():
        for name in (f"{p}_usage_trend_yoy", f"{p}_continuity_12m"):
            out[name] = (f"{zh}账单不足15个月，无法计算同比", f"fewer than 15 months of {en} bills: no year-on-year figure")
        out[f"{p}_usage_momentum_3m"] = (f"近期{zh}账单过少，无法计算", f"too few recent {en} bills for this figure")
        for name in (f"{p}_arrears_share_3m", f"{p}_arrears_share_24m"):
            out[name] = (f"该期间无{zh}账单金额", f"nothing was billed for {en} in the period")
    return out


FEATURE_ABSENCE = {  # feature: (中文, English): why it is missing although its source holds records
    "tax_sales_growth_12m": ("纳税申报记录不足两年，无法计算增长", "fewer than two years of tax returns: no growth figure"),
    "tax_sales_growth_3m_yoy": ("纳税申报记录不足15个月，无法计算同比", "fewer than 15 months of tax returns: no year-on-year figure"),
    "sales_electricity_trend_gap": ("纳税或用电记录不足15个月，无法比较同比",
                                    "fewer than 15 months of tax returns or bills: no year-on-year comparison"),
    "tax_sales_volatility_12m": ("近12个月纳税申报过少，无法计算波动", "too few tax returns in the last 12 months for a volatility"),
    "tax_sales_momentum_3m": ("近期纳税申报过少，无法计算", "too few recent tax returns for this figure"),
    "sales_electricity_corr_12m": ("近12个月纳税申报或用电记录过少，无法计算相关", "too few months of returns and bills for a correlation"),
    "tax_arrears_share_3m": ("近3个月无应缴税额", "no tax was due in the last 3 months"),
    "tax_arrears_share_24m": ("近24个月无应缴税额", "no tax was due in the last 24 months"),
    "tax_grade_change": ("仅有一个年度的纳税信用评价", "only one year of tax credit grades"),
    "court_days_since_last_case": ("无被执行立案记录", "no enforcement case on record"),
    "penalty_days_since_last": ("无仍在计入的行政处罚", "no administrative penalty that still counts"),
    "commitment_kept_share_24m": ("近24个月无已核查的信用承诺", "no commitment verified in the last 24 months"),
    "property_mortgaged_share": ("名下无不动产", "no property registered to it"),
    "property_seized_share": ("名下无不动产", "no property registered to it"),
    **_utility_absences(),
}

COVERAGE_FLAG = {source: flag for flag, source in COVERED_SOURCES.items()}
"""source → the coverage flag that says whether the platform holds any record of it."""


def absence_words(feature: str) -> tuple[str, str]:
    """What a missing value of ``feature`` means when its sources do hold records for the
    enterprise (FEATURE_ABSENCE, or a plain statement that the figure has no record)."""
    if feature in FEATURE_ABSENCE:
        return FEATURE_ABSENCE[feature]
    declared = get_feature(feature)
    return f"无可计算“{declared.zh}”的记录", f"no record to compute: {declared.en}"
