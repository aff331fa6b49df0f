"""Department source schemas: every source the platform receives, declared once.

Each :class:`Source` names its canonical English snake_case columns, the Chinese headers the
department actually writes, types, units, ranges and enumerations, the natural key, the event date
and the date the platform learned of the record (``known_date``), which dates must be ordered, and
the public-credit-catalogue category and legal basis that make its use lawful (work plan item 2).
Ingestion, the synthetic city and the documentation all read these declarations; nothing else
spells a header or a range.

Money is stored in the lake as integer fen; ``Column.unit`` says how the department writes it
(``yuan`` or ``wan_yuan`` = 万元). Dates are calendar dates; ``period`` columns are months.
"""

from __future__ import annotations

from dataclasses import dataclass, field

# ------------------------------------------------------------------------------ building blocks

KINDS = ("uscc", "text", "date", "period", "year", "money", "number", "int", "enum")
"""Column kinds: how a value is parsed and validated (yes/no flags are enums: 是/否, Y/N)."""

MONEY_UNITS = {"yuan": 100, "wan_yuan": 1_000_000}
"""Fen per unit for the money units departments write."""


@dataclass(frozen=True)
class EnumValue:
    """One allowed value of an enumeration: canonical code, Chinese label, other spellings."""

    code: str
    zh: str
    en: str
    aliases: tuple[str, ...] = ()


@dataclass(frozen=True)
class Column:
    """One column of a source, as the lake stores it and as departments write it."""

    name: str
    zh: str
    kind: str
    description: str
    required: bool = True
    aliases: tuple[str, ...] = ()
    unit: str | None = None
    min: float | None = None
    max: float | None = None
    values: tuple[EnumValue, ...] = ()

    def __post_init__(self) -> None:
        if self.kind not in KINDS:
            raise ValueError(f"column {self.name}: kind must be one of {KINDS}; got {self.kind!r}")
        if self.kind == "money" and self.unit not in MONEY_UNITS:
            raise ValueError(f"column {self.name}: money needs a unit in {sorted(MONEY_UNITS)}")
        if self.kind == "enum" and not self.values:
            raise ValueError(f"column {self.name}: an enum needs values")

    @property
    def headers(self) -> tuple[str, ...]:
        """Every header that maps to this column: Chinese, English name and aliases."""
        return (self.zh, self.name, *self.aliases)

    def enum_lookup(self) -> dict[str, str]:
        """Spelling (upper-cased) → canonical code, for every accepted spelling of an enum."""
        out: dict[str, str] = {}
        for v in self.values:
            for spelling in (v.code, v.zh, v.en, *v.aliases):
                out[spelling.upper()] = v.code
        return out


@dataclass(frozen=True)
class Delivery:
    """How the department delivers the source: what the synthetic city imitates.

    Ingestion does not trust this (it detects encodings and date formats); it documents what
    arrives and lets the generator reproduce it.
    """

    format: str  # "csv" or "xlsx"
    encoding: str | None = "utf-8"  # "utf-8", "utf-8-sig", "gbk"; None for xlsx
    date_format: str = "%Y-%m-%d"
    period_format: str = "%Y-%m"
    split_by_period: bool = False  # one file per month, as utilities and tax send them
    thousands_separator: bool = False  # amounts written as 1,234,567.89


CADENCES = {"monthly": 0, "annual": 365, "register": 0}
"""Each cadence and the days its content may be older than a monthly source's before it is stale:
a year's grade stands for the whole year after it is published."""


@dataclass(frozen=True)
class Source:
    """A department source: columns, keys, dates, lawful basis and delivery.

    ``repair_column`` names the date a record was repaired or removed (信用修复, 移出名单): from that
    date on the record no longer counts in any profile (work plan item 16), whenever the platform
    learned of the repair."""

    name: str
    title_zh: str
    title_en: str
    department_zh: str
    department_en: str
    catalogue_category: str
    legal_basis: str
    columns: tuple[Column, ...]
    natural_key: tuple[str, ...]
    event_date: str
    known_date: str
    delivery: Delivery
    accepts_corrections: bool = False
    date_order: tuple[tuple[str, str], ...] = ()
    reporting_department_column: str | None = None
    repair_column: str | None = None
    description: str = ""
    cadence: str = "register"
    """How the source's content renews (:data:`CADENCES`): ``monthly`` (a month's returns or bills
    delivered by the 24th of the next), ``annual`` (one evaluation a year, published months after
    the year it grades) or ``register`` (a register read as it stands on the day). Freshness is
    judged by it: an annual grade is not stale for being months old."""
    _by_name: dict = field(default_factory=dict, init=False, repr=False, compare=False)

    def __post_init__(self) -> None:
        if self.cadence not in CADENCES:
            raise ValueError(f"source {self.name}: cadence must be one of {tuple(CADENCES)}; got {self.cadence!r}")
        by_name = {c.name: c for c in self.columns}
        if len(by_name) != len(self.columns):
            raise ValueError(f"source {self.name}: duplicate column names")
        named = [*self.natural_key, self.event_date, self.known_date,
                 *(c for pair in self.date_order for c in pair)]
        if self.reporting_department_column:
            named.append(self.reporting_department_column)
        if self.repair_column:
            named.append(self.repair_column)
        missing = [c for c in named if c not in by_name]
        if missing:
            raise ValueError(f"source {self.name}: declares unknown columns {missing}")
        headers = [h for c in self.columns for h in c.headers]
        if len(set(headers)) != len(headers):
            raise ValueError(f"source {self.name}: a header maps to two columns")
        object.__setattr__(self, "_by_name", by_name)

    def column(self, name: str) -> Column:
        """The column called ``name``."""
        return self._by_name[name]

    @property
    def column_names(self) -> list[str]:
        """Canonical column names, in declaration order."""
        return [c.name for c in self.columns]

    def header_map(self) -> dict[str, str]:
        """Header as written (Chinese, English or alias) → canonical column name."""
        return {h: c.name for c in self.columns for h in c.headers}

    def required_columns(self) -> list[str]:
        """Columns a delivered file must contain."""
        return [c.name for c in self.columns if c.required]

    def file_stem(self, period: str | None = None) -> str:
        """File name (without extension) the department uses for a delivery."""
        return f"{self.name}_{period}" if period else self.name


# ------------------------------------------------------------------------------ shared columns

def _uscc(zh: str = "统一社会信用代码") -> Column:
    return Column("uscc", zh, "uscc", "Unified Social Credit Code of the enterprise",
                  aliases=("社会信用代码", "信用代码", "USCC"))


def _reported(zh: str = "报送日期") -> Column:
    return Column("reported_date", zh, "date",
                  "date the department delivered this version of the record to the platform",
                  aliases=("数据报送日期", "更新日期"))


def _period(zh: str) -> Column:
    return Column("period", zh, "period", "month the figures belong to", aliases=("所属期", "账期", "期间"))


def _money(name: str, zh: str, description: str, unit: str = "yuan", required: bool = True,
           aliases: tuple[str, ...] = ()) -> Column:
    return Column(name, zh, "money", description, required=required, unit=unit, min=0, aliases=aliases)


def _date(name: str, zh: str, description: str, required: bool = True,
          aliases: tuple[str, ...] = ()) -> Column:
    return Column(name, zh, "date", description, required=required, aliases=aliases)


YES_NO = (EnumValue("Y", "是", "yes"), EnumValue("N", "否", "no"))

ENTITY_KINDS = (
    EnumValue("enterprise", "企业", "enterprise", ("公司", "企业法人")),
    EnumValue("individual_business", "个体工商户", "individual business", ("个体户", "个体")),
    EnumValue("cooperative", "农民专业合作社", "farmer cooperative", ("合作社", "专业合作社")),
)

# GB/T 4754-2017 sections (门类).
INDUSTRY_SECTIONS = tuple(EnumValue(code, zh, en) for code, zh, en in (
    ("A", "农、林、牧、渔业", "agriculture, forestry, animal husbandry and fishery"),
    ("B", "采矿业", "mining"),
    ("C", "制造业", "manufacturing"),
    ("D", "电力、热力、燃气及水生产和供应业", "electricity, heat, gas and water supply"),
    ("E", "建筑业", "construction"),
    ("F", "批发和零售业", "wholesale and retail trade"),
    ("G", "交通运输、仓储和邮政业", "transport, storage and post"),
    ("H", "住宿和餐饮业", "accommodation and catering"),
    ("I", "信息传输、软件和信息技术服务业", "information transmission, software and IT services"),
    ("J", "金融业", "finance"),
    ("K", "房地产业", "real estate"),
    ("L", "租赁和商务服务业", "leasing and business services"),
    ("M", "科学研究和技术服务业", "scientific research and technical services"),
    ("N", "水利、环境和公共设施管理业", "water, environment and public facilities management"),
    ("O", "居民服务、修理和其他服务业", "household services, repair and other services"),
    ("P", "教育", "education"),
    ("Q", "卫生和社会工作", "health and social work"),
    ("R", "文化、体育和娱乐业", "culture, sports and entertainment"),
    ("S", "公共管理、社会保障和社会组织", "public administration and social organisations"),
    ("T", "国际组织", "international organisations"),
))

# Yichang's county-level divisions (GB/T 2260); the synthetic city and district features use them.
DISTRICTS = tuple(EnumValue(code, zh, en) for code, zh, en in (
    ("420502", "西陵区", "Xiling"), ("420503", "伍家岗区", "Wujiagang"), ("420504", "点军区", "Dianjun"),
    ("420505", "猇亭区", "Xiaoting"), ("420506", "夷陵区", "Yiling"), ("420525", "远安县", "Yuan'an"),
    ("420526", "兴山县", "Xingshan"), ("420527", "秭归县", "Zigui"),
    ("420528", "长阳土家族自治县", "Changyang"), ("420529", "五峰土家族自治县", "Wufeng"),
    ("420581", "宜都市", "Yidu"), ("420582", "当阳市", "Dangyang"), ("420583", "枝江市", "Zhijiang"),
))

BASIS_FINANCING = "国办发〔2021〕52号《加强信用信息共享应用促进中小微企业融资实施方案》，经企业授权共享"
BASIS_CATALOGUE = "发改财金规〔2024〕203号《全国公共信用信息基础目录（2024年版）》"

# ------------------------------------------------------------------------------ the sources

ENTERPRISE_REGISTRY = Source(
    name="enterprise_registry", title_zh="经营主体登记信息", title_en="enterprise registry",
    department_zh="市市场监管局", department_en="Municipal Market Regulation Administration",
    catalogue_category="登记注册基本信息 (registration basics)",
    legal_basis=BASIS_CATALOGUE + "；《市场主体登记管理条例》；《企业信息公示暂行条例》",
    columns=(
        _uscc(),
        Column("name", "主体名称", "text", "registered name", aliases=("企业名称", "名称")),
        Column("entity_type", "主体类型", "enum", "enterprise, individual business or cooperative",
               values=ENTITY_KINDS, aliases=("市场主体类型", "企业类型")),
        Column("industry_section", "行业门类", "enum", "GB/T 4754-2017 industry section",
               values=INDUSTRY_SECTIONS, aliases=("所属行业",)),
        Column("district_code", "所属区县", "enum", "county-level division of Yichang (GB/T 2260)",
               values=DISTRICTS, aliases=("行政区划代码", "区县")),
        _money("registered_capital", "注册资本（万元）", "registered capital (individual businesses: 资金数额)",
               unit="wan_yuan", aliases=("注册资本", "资金数额（万元）")),
        _date("established_date", "成立日期", "date of establishment", aliases=("注册日期",)),
        _date("deregistered_date", "注销日期", "date of deregistration; empty while it exists", required=False),
        _reported(),
    ),
    natural_key=("uscc",), event_date="established_date", known_date="reported_date",
    accepts_corrections=True,
    date_order=(("established_date", "deregistered_date"), ("established_date", "reported_date")),
    delivery=Delivery("csv", "gbk"),
    description="One row per market entity; a deregistration arrives as a corrected version.",
)

TAX_FILINGS = Source(
    name="tax_filings", title_zh="纳税申报信息", title_en="monthly tax filings",
    department_zh="市税务局", department_en="Municipal Tax Service",
    catalogue_category="纳税信息 (tax payment, shared with authorisation)",
    legal_basis=BASIS_FINANCING,
    columns=(
        _uscc("纳税人识别号"),
        _period("税款所属期"),
        _money("sales", "销售额（元）", "taxable sales of the month", aliases=("申报销售额",)),
        _money("tax_payable", "应纳税额（元）", "tax payable for the month"),
        _money("tax_paid", "已缴税额（元）", "tax paid for the month"),
        _money("arrears", "欠税金额（元）", "tax owed and unpaid at filing"),
        _date("filing_date", "申报日期", "date the return was filed"),
        Column("late", "是否逾期申报", "enum", "filed after the statutory deadline", values=YES_NO),
        _reported(),
    ),
    natural_key=("uscc", "period"), event_date="filing_date", known_date="reported_date",
    date_order=(("filing_date", "reported_date"),),
    delivery=Delivery("csv", "utf-8-sig", period_format="%Y年%m月", split_by_period=True),
    description="One row per taxpayer and month; fixed-quota individual businesses do not file.",
    cadence="monthly",
)

TAX_GRADES = Source(
    name="tax_grades", title_zh="纳税信用等级", title_en="annual tax credit grade",
    department_zh="市税务局", department_en="Municipal Tax Service",
    catalogue_category="信用评价结果信息 (credit evaluation results)",
    legal_basis=BASIS_CATALOGUE + "；《纳税信用管理办法》",
    columns=(
        _uscc("纳税人识别号"),
        Column("year", "评价年度", "year", "tax year evaluated", min=2000, max=2100),
        Column("grade", "纳税信用级别", "enum", "A, B, M (new taxpayer), C or D",
               values=tuple(EnumValue(g, f"{g}级", g) for g in "ABMCD"), aliases=("信用等级",)),
        _date("published_date", "评定日期", "date the grade was published"),
        _reported(),
    ),
    natural_key=("uscc", "year"), event_date="published_date", known_date="reported_date",
    date_order=(("published_date", "reported_date"),),
    delivery=Delivery("csv", "gbk", date_format="%Y%m%d"),
    cadence="annual",
)


def _utility(name: str, title_zh: str, title_en: str, company_zh: str, company_en: str,
             usage_zh: str, unit: str, delivery: Delivery) -> Source:
    """A utility source: the three utilities send the same shape of monthly bill."""
    return Source(
        name=name, title_zh=title_zh, title_en=title_en,
        department_zh=company_zh, department_en=company_en,
        catalogue_category="水电气费缴纳信息 (utility payments, shared with authorisation)",
        legal_basis=BASIS_FINANCING,
        columns=(
            _uscc("用户统一社会信用代码"),
            Column("account_no", "户号", "text", "utility account number", aliases=("用户编号",)),
            _period("抄表年月"),
            Column("usage", usage_zh, "number", f"metered usage of the month ({unit})", unit=unit, min=0),
            _money("billed", "应缴金额（元）", "amount billed for the month", aliases=("账单金额",)),
            _money("paid", "实缴金额（元）", "amount paid against the bill"),
            _money("arrears", "欠费金额（元）", "unpaid balance at month end"),
            _reported(),
        ),
        natural_key=("uscc", "period"), event_date="period", known_date="reported_date",
        delivery=delivery,
        description="One row per account and month.",
        cadence="monthly",
    )


ELECTRICITY = _utility("electricity", "用电信息", "monthly electricity", "宜昌供电公司",
                       "Yichang Power Supply Company", "用电量（千瓦时）", "kWh",
                       Delivery("csv", "gbk", date_format="%Y/%m/%d", period_format="%Y%m",
                                split_by_period=True))
WATER = _utility("water", "用水信息", "monthly water", "宜昌浦华水务公司", "Yichang Puhua Water",
                 "用水量（立方米）", "m3",
                 Delivery("csv", "utf-8", date_format="%Y%m%d", period_format="%Y%m", split_by_period=True))
GAS = _utility("gas", "用气信息", "monthly gas", "宜昌中燃燃气公司", "Yichang China Gas",
               "用气量（立方米）", "m3",
               Delivery("csv", "utf-8-sig", period_format="%Y-%m", split_by_period=True))

REAL_ESTATE = Source(
    name="real_estate", title_zh="不动产登记信息", title_en="real-estate registrations",
    department_zh="市自然资源和规划局（不动产登记中心）", department_en="Real Estate Registration Centre",
    catalogue_category="不动产登记信息 (real estate, shared with authorisation)",
    legal_basis=BASIS_FINANCING + "；《不动产登记暂行条例》",
    columns=(
        Column("certificate_no", "不动产权证号", "text", "certificate number", aliases=("证书号",)),
        _uscc("权利人统一社会信用代码"),
        Column("property_type", "不动产类型", "enum", "land or building",
               values=(EnumValue("land", "土地", "land", ("国有建设用地使用权",)),
                       EnumValue("building", "房屋", "building", ("房屋所有权",)))),
        Column("area_m2", "面积（平方米）", "number", "registered area", unit="m2", min=0),
        _money("appraised_value", "评估价值（万元）", "appraised value", unit="wan_yuan"),
        _date("registration_date", "登记日期", "date of first registration to this owner"),
        _date("mortgage_date", "抵押登记日期", "date a mortgage was registered", required=False),
        _date("mortgage_release_date", "抵押注销日期", "date the mortgage was released", required=False),
        _date("seizure_date", "查封日期", "date a court seized the property", required=False),
        _date("seizure_release_date", "解封日期", "date the seizure was lifted", required=False),
        _reported(),
    ),
    natural_key=("certificate_no",), event_date="registration_date", known_date="reported_date",
    accepts_corrections=True,
    date_order=(("registration_date", "mortgage_date"), ("mortgage_date", "mortgage_release_date"),
                ("registration_date", "seizure_date"), ("seizure_date", "seizure_release_date"),
                ("registration_date", "reported_date")),
    delivery=Delivery("csv", "gbk", date_format="%Y/%m/%d"),
    description="One row per certificate; mortgages and seizures arrive as corrected versions.",
)

INTELLECTUAL_PROPERTY = Source(
    name="intellectual_property", title_zh="知识产权信息", title_en="intellectual property",
    department_zh="市市场监管局（知识产权局）", department_en="Intellectual Property Office",
    catalogue_category="发展创新信息 (patents, trademarks, copyrights)",
    legal_basis=BASIS_FINANCING + "；《专利法》；《商标法》；《计算机软件保护条例》",
    columns=(
        Column("ip_no", "申请号/注册号", "text", "application or registration number", aliases=("申请号", "注册号")),
        _uscc("权利人统一社会信用代码"),
        Column("ip_type", "知识产权类型", "enum", "kind of right",
               values=(EnumValue("invention_patent", "发明专利", "invention patent"),
                       EnumValue("utility_model", "实用新型专利", "utility model", ("实用新型",)),
                       EnumValue("design_patent", "外观设计专利", "design patent", ("外观设计",)),
                       EnumValue("trademark", "注册商标", "trademark", ("商标",)),
                       EnumValue("software_copyright", "软件著作权", "software copyright",
                                 ("计算机软件著作权",)))),
        _date("application_date", "申请日期", "date of application"),
        _date("grant_date", "授权日期", "date granted or registered", required=False,
              aliases=("注册日期", "登记日期")),
        _date("lapse_date", "失效日期", "date the right lapsed", required=False),
        _date("pledge_date", "质押登记日期", "date the right was pledged", required=False),
        _reported(),
    ),
    natural_key=("ip_no",), event_date="application_date", known_date="reported_date",
    accepts_corrections=True,
    date_order=(("application_date", "grant_date"), ("grant_date", "lapse_date"),
                ("grant_date", "pledge_date"), ("application_date", "reported_date")),
    delivery=Delivery("xlsx", None),
)

COURT_EXECUTIONS = Source(
    name="court_executions", title_zh="被执行人信息", title_en="court execution cases",
    department_zh="市中级人民法院", department_en="Intermediate People's Court",
    catalogue_category="司法裁判及执行信息 (judgments and enforcement)",
    legal_basis=BASIS_CATALOGUE + "；《民事诉讼法》执行程序",
    columns=(
        Column("case_no", "案号", "text", "enforcement case number"),
        _uscc("被执行人统一社会信用代码"),
        _date("filing_date", "立案日期", "date the case was filed"),
        _money("amount", "执行标的（元）", "amount to be enforced", aliases=("执行标的金额",)),
        _date("closing_date", "结案日期", "date the case was closed; empty while open", required=False),
        _reported(),
    ),
    natural_key=("case_no",), event_date="filing_date", known_date="reported_date",
    accepts_corrections=True,
    date_order=(("filing_date", "closing_date"), ("filing_date", "reported_date")),
    delivery=Delivery("csv", "utf-8", thousands_separator=True),
)

DISHONEST_DEBTORS = Source(
    name="dishonest_debtors", title_zh="失信被执行人名单", title_en="dishonest-debtor list",
    department_zh="市中级人民法院", department_en="Intermediate People's Court",
    catalogue_category="严重失信主体名单信息 (list of seriously dishonest entities)",
    legal_basis=BASIS_CATALOGUE + "；《最高人民法院关于公布失信被执行人名单信息的若干规定》",
    columns=(
        Column("case_no", "案号", "text", "enforcement case that led to the listing"),
        _uscc("失信被执行人统一社会信用代码"),
        _date("listing_date", "发布日期", "date the entity was put on the list", aliases=("列入日期",)),
        _date("removal_date", "移除日期", "date it was removed (paid, repaired or expired)", required=False,
              aliases=("屏蔽日期", "撤销日期")),
        _reported(),
    ),
    natural_key=("case_no",), event_date="listing_date", known_date="reported_date",
    accepts_corrections=True, repair_column="removal_date",
    date_order=(("listing_date", "removal_date"), ("listing_date", "reported_date")),
    delivery=Delivery("csv", "utf-8-sig"),
)

PENALTY_SEVERITIES = (
    EnumValue("minor", "轻微", "minor", ("轻微失信",)),
    EnumValue("general", "一般", "general", ("一般失信",)),
    EnumValue("serious", "较重", "serious", ("较重失信",)),
    EnumValue("severe", "严重", "severe", ("严重失信",)),
)

ADMINISTRATIVE_PENALTIES = Source(
    name="administrative_penalties", title_zh="行政处罚信息（双公示）", title_en="administrative penalties",
    department_zh="各行政执法部门", department_en="law-enforcement departments",
    catalogue_category="行政管理信息—行政处罚 (administrative penalties, double publicity)",
    legal_basis=BASIS_CATALOGUE + "；《行政处罚法》第四十八条；"
                "《失信行为纠正后的信用信息修复管理办法（试行）》（国家发展改革委令第58号）",
    columns=(
        Column("decision_no", "行政处罚决定书文号", "text", "decision number", aliases=("决定书文号",)),
        _uscc("行政相对人统一社会信用代码"),
        Column("department", "处罚机关", "text", "department that decided and reports the penalty",
               aliases=("处罚机关名称",)),
        _date("decision_date", "处罚决定日期", "date of the decision"),
        Column("severity", "失信程度", "enum", "severity of the breach", values=PENALTY_SEVERITIES),
        _money("amount", "罚款金额（万元）", "fine", unit="wan_yuan", aliases=("罚款金额",)),
        _date("published_date", "公示日期", "date published on the credit website"),
        _date("repair_date", "信用修复日期", "date the record was repaired and stopped being published",
              required=False),
        _reported(),
    ),
    natural_key=("decision_no",), event_date="decision_date", known_date="reported_date",
    accepts_corrections=True,
    date_order=(("decision_date", "published_date"), ("published_date", "repair_date"),
                ("decision_date", "reported_date")),
    reporting_department_column="department", repair_column="repair_date",
    delivery=Delivery("xlsx", None),
    description="Published within 7 working days of the decision (work plan item 4); "
                "a repair arrives as a corrected version.",
)

CREDIT_COMMITMENTS = Source(
    name="credit_commitments", title_zh="信用承诺信息", title_en="credit commitments",
    department_zh="各行业主管部门", department_en="sector departments",
    catalogue_category="信用承诺及履行情况信息 (credit commitments and their performance)",
    legal_basis=BASIS_CATALOGUE + "；国办发〔2019〕35号",
    columns=(
        Column("commitment_no", "承诺编号", "text", "commitment number"),
        _uscc("承诺主体统一社会信用代码"),
        Column("department", "受诺部门", "text", "department the commitment was made to"),
        Column("commitment_type", "承诺类型", "enum", "kind of commitment", values=(
            EnumValue("approval_substitute", "审批替代型", "approval substitute"),
            EnumValue("missing_documents", "容缺受理型", "acceptance with missing documents"),
            EnumValue("certification", "证明事项型", "certification"),
            EnumValue("voluntary", "主动自愿型", "voluntary"),
            EnumValue("self_discipline", "行业自律型", "industry self-discipline"),
            EnumValue("credit_repair", "信用修复型", "credit repair"))),
        _date("commitment_date", "承诺日期", "date the commitment was made"),
        Column("status", "履约状态", "enum", "kept, broken or still being verified", values=(
            EnumValue("pending", "履约中", "pending", ("待核查",)),
            EnumValue("kept", "已履约", "kept", ("践诺",)),
            EnumValue("broken", "未履约", "broken", ("违诺", "失诺")))),
        _date("verified_date", "核查日期", "date performance was verified", required=False),
        _reported(),
    ),
    natural_key=("commitment_no",), event_date="commitment_date", known_date="reported_date",
    accepts_corrections=True,
    date_order=(("commitment_date", "verified_date"), ("commitment_date", "reported_date")),
    reporting_department_column="department",
    delivery=Delivery("csv", "gbk"),
    description="Reported when made (履约中) and again, corrected, once verified.",
)

LOAN_OUTCOMES = Source(
    name="loan_outcomes", title_zh="融资结果反馈", title_en="loan outcomes reported by banks",
    department_zh="合作金融机构", department_en="partner banks",
    catalogue_category="融资对接结果 (financing results reported back monthly, work plan item 17)",
    legal_basis=BASIS_FINANCING,
    columns=(
        Column("loan_no", "借据号", "text", "loan (drawdown) number", aliases=("贷款编号",)),
        _uscc("借款人统一社会信用代码"),
        Column("bank", "贷款银行", "text", "lending bank", aliases=("金融机构",)),
        _date("grant_date", "放款日期", "date the loan was granted"),
        _money("amount", "贷款金额（元）", "amount granted"),
        Column("term_months", "贷款期限（月）", "int", "term in months", min=1, max=120),
        Column("worst_dpd", "最长逾期天数", "int", "worst days past due so far", min=0, max=3650),
        Column("default_12m", "12个月内是否违约", "enum",
               "90+ days past due within 12 months of grant; empty until known",
               values=YES_NO, required=False),
        _reported(),
    ),
    natural_key=("loan_no",), event_date="grant_date", known_date="reported_date",
    accepts_corrections=True,
    date_order=(("grant_date", "reported_date"),),
    reporting_department_column="bank",
    delivery=Delivery("csv", "utf-8"),
    description="Banks report each loan back monthly; the newest report wins.",
)

SOURCES: dict[str, Source] = {s.name: s for s in (
    ENTERPRISE_REGISTRY, TAX_FILINGS, TAX_GRADES, ELECTRICITY, WATER, GAS, REAL_ESTATE,
    INTELLECTUAL_PROPERTY, COURT_EXECUTIONS, DISHONEST_DEBTORS, ADMINISTRATIVE_PENALTIES,
    CREDIT_COMMITMENTS, LOAN_OUTCOMES)}
"""Every department source, by name, in the order departments are usually ingested."""


def get_source(name: str) -> Source:
    """The source called ``name``, or a ValueError listing the known ones."""
    try:
        return SOURCES[name]
    except KeyError:
        raise ValueError(f"unknown source {name!r}; known sources: {', '.join(SOURCES)}") from None


def sources_markdown() -> str:
    """The README's table of sources, written from the declarations above."""
    lines = ["| source | 中文 | delivered by | natural key | event date / known date | corrections | "
             "delivery | catalogue category |", "|---|---|---|---|---|---|---|---|"]
    for s in SOURCES.values():
        d = s.delivery
        delivery = "XLSX" if d.format == "xlsx" else f"CSV {d.encoding}"
        if d.split_by_period:
            delivery += ", one file per month"
        lines.append(f"| `{s.name}` | {s.title_zh} | {s.department_zh} | {', '.join(s.natural_key)} | "
                     f"{s.event_date} / {s.known_date} | {'yes' if s.accepts_corrections else 'no'} | {delivery} | "
                     f"{s.catalogue_category} |")
    return "\n".join(lines)
