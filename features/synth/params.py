"""Calibration of the synthetic city: every default in one place, each with its source.

Figures come from ``shared/reference/city-facts.md`` (confidence in brackets there); "estimate"
marks a figure reasoned from others. The generator reads nothing else, so recalibrating the city
means editing this module.
"""

from __future__ import annotations

from dataclasses import dataclass

# Entity mix of Yichang, 2024 estimate: ~76 % individual businesses, ~22.5 % enterprises,
# ~1.5 % cooperatives (city-facts: Entities).
ENTITY_MIX = {"enterprise": 0.225, "individual_business": 0.76, "cooperative": 0.015}

# USCC entity-type character under registration authority 9 (market regulator).
USCC_TYPE = {"enterprise": "1", "individual_business": "2", "cooperative": "3"}

# Shares of entities by district, % (city-facts: Districts, estimate).
DISTRICT_SHARES = {
    "420502": 16, "420503": 11, "420506": 14, "420581": 11, "420583": 10, "420582": 10,
    "420527": 6, "420528": 6, "420525": 4, "420526": 3, "420529": 3, "420504": 3, "420505": 3,
}
# 猇亭 and 宜都 lean to chemicals, 西陵 to services, the mountain counties to agriculture
# (citrus, tea) and tourism: multipliers on the industry mix, renormalised per district.
DISTRICT_INDUSTRY_TILT = {
    "420505": {"C": 2.5}, "420581": {"C": 1.8},
    "420502": {"L": 1.4, "I": 1.5, "H": 1.2, "C": 0.5, "A": 0.3},
    "420526": {"A": 3.0, "H": 1.6}, "420529": {"A": 3.0, "H": 1.6},
    "420528": {"A": 2.5, "H": 1.6}, "420527": {"A": 3.0, "H": 1.4},
}

# Industry mix by entity type (city-facts: Industry mix). "other" is spread over the remaining
# sections in proportion to OTHER_SPLIT.
INDUSTRY_MIX = {
    "individual_business": {"F": 0.50, "H": 0.15, "O": 0.09, "G": 0.07, "C": 0.05, "A": 0.05, "other": 0.09},
    "enterprise": {"F": 0.26, "L": 0.15, "C": 0.12, "E": 0.10, "G": 0.06, "H": 0.05, "A": 0.05,
                   "D": 0.01, "other": 0.20},
    "cooperative": {"A": 0.90, "F": 0.05, "other": 0.05},
}
OTHER_SPLIT = {"I": 0.20, "K": 0.12, "M": 0.16, "O": 0.14, "P": 0.10, "Q": 0.10, "R": 0.10, "B": 0.04,
               "N": 0.04}
# A quarter of manufacturing is chemicals/phosphorus (Yichang holds ~15 % of China's phosphate rock).
CHEMICAL_SHARE_OF_MANUFACTURING = 0.25

# Monthly sales of a healthy, typical entity, yuan (median) and log-spread (estimate: ~95 % of all
# entities stay under the 5M yuan/year small-scale VAT threshold).
SALES_MEDIAN = {"enterprise": 150_000, "individual_business": 30_000, "cooperative": 50_000}
SALES_LOG_SD = {"enterprise": 1.1, "individual_business": 0.8, "cooperative": 0.9}
SMALL_SCALE_ANNUAL_LIMIT = 5_000_000  # yuan (city-facts: Tax) [high]
SMALL_SCALE_RATE = 0.01  # 1 % [high]
SMALL_SCALE_EXEMPT_MONTHLY = 100_000  # yuan/month exempt until end-2027 [high]
GENERAL_EFFECTIVE_RATE = {"C": 0.035, "F": 0.02, "E": 0.03, "default": 0.025}  # VAT on sales, estimate

# ~60 % of individual businesses are taxed on a fixed quota and file little; ~30 % of registered
# individual businesses are dormant (2023 economic census) (city-facts: Tax, Entities).
INDIVIDUAL_FIXED_QUOTA = 0.60
INDIVIDUAL_DORMANT = 0.30

# Electricity at 100k yuan of monthly sales, kWh, by section (city-facts: shops ~300-3,000
# kWh/month, small factories ~5,000-50,000 kWh/month; estimate). Chemicals use CHEMICAL_KWH.
KWH_AT_100K = {"C": 15_000, "A": 2_500, "B": 12_000, "D": 6_000, "E": 2_000, "F": 1_500, "G": 1_800,
               "H": 5_000, "I": 1_200, "default": 1_500}
CHEMICAL_KWH = 45_000
ELECTRICITY_PRICE = 0.68  # yuan/kWh, Hubei commercial ~0.62-0.75 (estimate)
WATER_PRICE = 3.9  # yuan/m3 non-residential (estimate)
GAS_PRICE = 3.6  # yuan/m3 commercial (estimate)
WATER_M3_AT_100K = {"H": 120, "C": 150, "A": 200, "O": 60, "default": 25}
GAS_USERS = {"H": 0.85, "C": 0.30, "O": 0.20, "default": 0.05}  # share of entities with a gas account
GAS_M3_AT_100K = {"H": 700, "C": 900, "default": 150}

# Tax credit grades, estimate for now: A 7 %, B 58 %, M 26 % (new firms), C 2.5 %, D 6.5 %.
TAX_GRADE_SHARES = {"A": 0.07, "B": 0.58, "M": 0.26, "C": 0.025, "D": 0.065}
TAX_GRADE_PUBLISHED_MONTH = 4  # grades for year Y are published in April of Y+1

# 12-month default ≈ 2-3 % on the whole book; by tax grade A 0.8 %, B 2 %, M 4 %, C 8 %, D 20 %
# (city-facts: Credit, estimate). The generator's PD intercept is tuned to the book rate.
TARGET_DEFAULT_RATE = 0.025
TARGET_DEFAULT_BY_GRADE = {"A": 0.008, "B": 0.02, "M": 0.04, "C": 0.08, "D": 0.20}

# Loans: >4 % of existing entities should get a loan through the platform each year (work plan
# item 17); amounts lognormal around 250k yuan (银税互动 Q1 2020: ~240k each); unsecured cap 3M.
LOANS_PER_YEAR = {"enterprise": 0.30, "individual_business": 0.025, "cooperative": 0.10}
LOAN_MEDIAN = 250_000
LOAN_LOG_SD = 0.7
LOAN_MIN, LOAN_MAX = 20_000, 3_000_000
LOAN_TERMS = {12: 0.80, 6: 0.08, 24: 0.07, 36: 0.05}
BANKS = ("中国工商银行宜昌分行", "中国农业银行宜昌分行", "中国银行宜昌分行", "中国建设银行宜昌分行",
         "交通银行宜昌分行", "湖北银行宜昌分行", "湖北宜昌农村商业银行", "中国邮政储蓄银行宜昌市分行")
BANK_SHARES = (0.16, 0.14, 0.10, 0.16, 0.06, 0.12, 0.18, 0.08)

# Exit hazard by age: 1.6 % in year 1, 6.3 % in year 2, 9.5 % in year 3, > 8 % to year 7
# [high, old]; individual businesses ~1.3 × (estimate).
EXIT_HAZARD_BY_AGE = (0.016, 0.063, 0.095, 0.09, 0.085, 0.08, 0.08, 0.05)
INDIVIDUAL_EXIT_MULTIPLIER = 1.3
AGE_MEAN_YEARS = {"enterprise": 7.0, "individual_business": 5.0, "cooperative": 6.0}

# Assets: ~20 % of enterprises and ~7 % of individual businesses own real estate; ~5 % of
# enterprises hold any patent (10 % of manufacturers); 10-20 % hold a trademark (city-facts).
OWNS_PROPERTY = {"enterprise": 0.20, "individual_business": 0.07, "cooperative": 0.15}
HOLDS_PATENT = {"enterprise": 0.05, "manufacturer": 0.10}
HOLDS_TRADEMARK = {"enterprise": 0.15, "individual_business": 0.03, "cooperative": 0.10}
HOLDS_SOFTWARE = {"I": 0.45, "M": 0.20, "default": 0.01}

# Court and penalties: 1-2 % of enterprises on the dishonest list at a time (more in construction
# and real estate); 3-6 % had an administrative penalty in the last 3 years (city-facts).
PENALTY_SEVERITY_SHARES = {"minor": 0.40, "general": 0.45, "serious": 0.12, "severe": 0.03}
PENALTY_AMOUNT_WAN = {"minor": (0.05, 0.5), "general": (0.5, 5), "serious": (5, 50), "severe": (20, 200)}
# Minimum publication before repair (国家发展改革委令第58号): general 3 months, serious 1 year;
# severe (严重失信) records are not repaired inside a two-year window here.
PENALTY_MIN_PUBLICATION_MONTHS = {"minor": 0, "general": 3, "serious": 12, "severe": 36}
PENALTY_PUBLISHED_LATE = 0.12  # share published after 7 working days (timeliness is not 100 %)
PENALTY_DEPARTMENTS = ("市市场监管局", "市生态环境局", "市应急管理局", "市住建局", "市交通运输局",
                       "市卫生健康委", "市城市管理执法委", "市自然资源和规划局", "市税务局")
COMMITMENTS_PER_YEAR = 0.35
COMMITMENT_TYPES = {"approval_substitute": 0.30, "missing_documents": 0.20, "certification": 0.25,
                    "voluntary": 0.15, "self_discipline": 0.05, "credit_repair": 0.05}
COMMITMENT_DEPARTMENTS = ("市政务服务和大数据管理局", "市市场监管局", "市住建局", "市发改委", "市商务局")

CHINESE_NAME_WORDS = tuple(
    "长江 三峡 夷陵 清江 峡江 宜兴 鸿源 金桥 华新 恒达 顺泰 荣盛 兴发 宏远 瑞丰 天盛 民康 福泰 嘉禾 新城 "
    "楚天 荆楚 昭君 西陵 龙泉 柑橘 茶香 绿源 同心 联合 博远 创新 卓越 远航 安泰 和顺 汇丰 永兴 佳禾 凯达".split())
INDUSTRY_NAME_WORDS = {
    "A": ("农业", "种植", "柑橘", "茶业"), "B": ("矿业", "磷矿"), "C": ("制造", "化工", "机械", "食品"),
    "D": ("水电", "能源"), "E": ("建筑", "建设工程"), "F": ("商贸", "贸易", "超市", "商行"),
    "G": ("物流", "运输"), "H": ("餐饮", "酒店", "饭店"), "I": ("科技", "软件", "信息技术"),
    "K": ("置业", "物业"), "L": ("商务服务", "咨询", "租赁"), "M": ("技术服务", "检测"),
    "default": ("服务", "经营部"),
}
NAME_SUFFIX = {"enterprise": "有限公司", "individual_business": "", "cooperative": "专业合作社"}


@dataclass(frozen=True)
class LatentHealth:
    """The hidden health process every observable signal follows.

    ``h[t] = quality + x[t]``, with ``x`` AR(1) (``rho``, innovation ``sigma``) plus rare negative
    shocks. Defaults depend on ``h`` at grant (partly seen through sales, arrears, late filings,
    utilities, court and penalty records) and on an owner factor no source records.
    """

    rho: float = 0.88
    sigma: float = 0.35
    shock_probability: float = 0.006  # per month
    shock_size: tuple[float, float] = (1.0, 2.5)
    sales_loading: float = 0.45  # log-sales per unit of x
    growth_per_quality: float = 0.008  # monthly log-growth per unit of quality
    pd_intercept: float = -3.6
    pd_health: float = -1.25
    pd_owner: float = -0.35  # the part no source sees
    pd_young: float = 0.45
    pd_leverage: float = 0.35


HEALTH = LatentHealth()
