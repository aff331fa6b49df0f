"""Turn a :class:`~features.synth.population.Population` into department records.

Every function returns the records of one source as a pandas DataFrame in canonical form: the
schema's column names, dates as ``datetime64``, money as integer fen, enumerations as canonical
codes. Records the platform would only learn after the window's end are not returned. Sources
whose records change (a case closes, a penalty is repaired) return one row per version, each
with the date it was reported, as departments deliver corrections.
"""

from __future__ import annotations

import numpy as np
import pandas as pd

from features.schemas import DISTRICTS
from features.synth import params as P
from features.synth.population import (ELECTRICITY_SEASON, GAS_SEASON, WATER_SEASON, Population,
                                       by_section, choose, grade_cuts, sigmoid)

DAY = np.timedelta64(1, "D")
NAT = np.datetime64("NaT", "D")


def serial(chunk: int, local: np.ndarray) -> np.ndarray:
    """Sequence numbers unique across chunks: the chunk number, then a fixed-width local number."""
    return np.char.add(str(chunk + 1), zero_padded(local, 6))


def zero_padded(numbers: np.ndarray, width: int) -> np.ndarray:
    """Integers as fixed-width text with leading zeros."""
    if len(numbers) == 0:
        return np.array([], dtype=f"U{width}")
    return np.strings.zfill(numbers.astype(str), width)


def _fen(yuan: np.ndarray) -> np.ndarray:
    return np.round(np.asarray(yuan, dtype=float) * 100).astype(np.int64)


def _days(rng: np.random.Generator, n: int, low: int, high: int) -> np.ndarray:
    """Random whole-day offsets in [low, high]."""
    return rng.integers(low, high + 1, n) * DAY


def _month_cells(pop: Population, mask: np.ndarray):
    """(entity, step) of every True cell of an entity × window-month mask."""
    return np.nonzero(mask[:, : pop.calendar.months])


def _published(df: pd.DataFrame, pop: Population) -> pd.DataFrame:
    """Only what was reported by the window's end, oldest report first."""
    df = df[df["reported_date"] <= pop.calendar.end_date]
    return df.sort_values("reported_date", kind="stable").reset_index(drop=True)


def versions(df: pd.DataFrame, stages: list[str], pop: Population, rng: np.random.Generator,
             lag_days: tuple[int, int], dependants: dict[str, tuple[str, object]] | None = None) -> pd.DataFrame:
    """One row per change a record went through, as the department reports each change.

    ``stages`` are date columns (the first always present). The version as of a stage's date
    shows only the stage dates up to it; ``dependants`` maps a stage to a column whose value is
    unknown before it (the status a verification sets) and the value shown until then. Stages on
    the same day make one version, and a record's versions are reported in the order they
    happened, a day apart at least, so the newest report is always the fullest.
    """
    dependants = dependants or {}
    df = df.reset_index(drop=True)
    parts = []
    for stage in stages:
        happened = df[stage].notna().to_numpy()
        parts.append(pd.DataFrame({"record": np.flatnonzero(happened), "as_of": df.loc[happened, stage].to_numpy()}))
    moments = (pd.concat(parts, ignore_index=True).drop_duplicates()
               .sort_values(["record", "as_of"], kind="stable").reset_index(drop=True))
    out = df.loc[moments["record"]].reset_index(drop=True)
    as_of = moments["as_of"].to_numpy()
    for stage in stages:
        out[stage] = np.where(out[stage].to_numpy() > as_of, NAT, out[stage].to_numpy())
        if stage in dependants:
            column, unknown = dependants[stage]
            out[column] = np.where(out[stage].isna(), unknown, out[column].to_numpy())
    reported = (as_of + _days(rng, len(out), *lag_days)).astype("datetime64[D]").astype(np.int64)
    rank = moments.groupby("record").cumcount().to_numpy()
    # each version reported at least a day after the one before: r'[k] = max(r[k], r'[k-1] + 1)
    shifted = pd.Series(reported - rank).groupby(moments["record"]).cummax().to_numpy() + rank
    out["reported_date"] = shifted.astype("datetime64[D]")
    return _published(out, pop)


def enterprise_registry(pop: Population, rng: np.random.Generator) -> pd.DataFrame:
    """One row per entity; a deregistration inside the window arrives as a second version."""
    cal = pop.calendar
    dereg = pop.deregistered
    df = pd.DataFrame({
        "uscc": pop.codes, "name": entity_names(pop, rng), "entity_type": pop.kind,
        "industry_section": pop.section, "district_code": pop.district,
        "registered_capital": np.round(pop.capital_wan * 1_000_000).astype(np.int64),
        "established_date": pop.established, "deregistered_date": dereg,
    })
    out = versions(df, ["established_date", "deregistered_date"], pop, rng, (0, 3))
    # An entity registered in the window's last days is still delivered by its end.
    missing = ~df["uscc"].isin(out["uscc"])
    if missing.any():
        late = df[missing].assign(deregistered_date=NAT, reported_date=cal.end_date)
        out = pd.concat([out, late], ignore_index=True)
    return out


def entity_names(pop: Population, rng: np.random.Generator) -> np.ndarray:
    """Plausible Chinese names: district, a trade word, the industry and the legal form."""
    short = {d.code: d.zh.rstrip("区县市").removesuffix("土家族自治") for d in DISTRICTS}
    words = np.array(P.CHINESE_NAME_WORDS)[rng.integers(0, len(P.CHINESE_NAME_WORDS), pop.n)]
    trade = np.array([_pick(P.INDUSTRY_NAME_WORDS.get(s, P.INDUSTRY_NAME_WORDS["default"]), r)
                      for s, r in zip(pop.section, rng.random(pop.n))])
    suffix = np.array([P.NAME_SUFFIX[k] for k in pop.kind])
    shop = np.where(pop.kind == "individual_business", np.array(["店", "经营部", "商行"])[rng.integers(0, 3, pop.n)], "")
    district = np.array([short[d] for d in pop.district])
    numbered = np.char.add(np.char.add(district, words), trade)
    return np.char.add(np.char.add(numbered, shop), suffix)


def _pick(options: tuple[str, ...], u: float) -> str:
    return options[int(u * len(options))]


def tax_filings(pop: Population, rng: np.random.Generator) -> pd.DataFrame:
    """Monthly VAT returns of every filer while it is alive."""
    cal = pop.calendar
    entity, step = _month_cells(pop, pop.alive & pop.tax_filer[:, None])
    h = pop.health[entity, step]
    sales = pop.sales[entity, step]
    general = 12 * np.exp(pop.log_size[entity]) > P.SMALL_SCALE_ANNUAL_LIMIT
    general_rate = by_section(P.GENERAL_EFFECTIVE_RATE, pop.section[entity])
    payable = np.where(general, sales * general_rate,
                       np.where(sales > P.SMALL_SCALE_EXEMPT_MONTHLY, sales * P.SMALL_SCALE_RATE, 0.0))
    payable_fen = _fen(payable)
    in_arrears = rng.random(len(entity)) < sigmoid(-3.0 - 1.9 * h)
    paid_share = sigmoid(0.3 + 1.2 * h) * rng.uniform(0.3, 1.0, len(entity))  # the weaker, the less it pays
    paid_fen = np.where(in_arrears, _fen(payable * paid_share), payable_fen)
    late = rng.random(len(entity)) < sigmoid(-2.6 - 1.6 * h)
    next_month = cal.month_start(step + 1)
    filing = np.where(late, next_month + _days(rng, len(entity), 15, 60), next_month + _days(rng, len(entity), 0, 14))
    # tax is cleared before an entity may deregister
    filing = np.minimum(filing, pop.last_day[entity])
    df = pd.DataFrame({
        "uscc": pop.codes[entity], "period": cal.month_start(step), "sales": _fen(sales),
        "tax_payable": payable_fen, "tax_paid": paid_fen, "arrears": payable_fen - paid_fen,
        "filing_date": filing, "late": np.where(late, "Y", "N"),
        "reported_date": filing + _days(rng, len(entity), 1, 10),
    })
    return _published(df, pop)


def tax_grades(pop: Population, rng: np.random.Generator) -> pd.DataFrame:
    """Annual tax credit grades published each April for the year before."""
    cal = pop.calendar
    first_year = int(str(cal.start)[:4]) - 2  # the grade already published when the window opens
    last_year = int(str(cal.end)[:4])
    frames = []
    for year in range(first_year, last_year):
        published_month = np.datetime64(f"{year + 1}-{P.TAX_GRADE_PUBLISHED_MONTH:02d}", "M")
        step = max(int((published_month - cal.start).astype(int)), 0)
        if published_month > cal.end or published_month < cal.start - 12:
            continue
        rated = pop.alive[:, step] & pop.tax_filer & (pop.established <= np.datetime64(f"{year}-12-31"))
        idx = np.flatnonzero(rated)
        year_steps = [s for s in range(cal.months) if str(cal.start + s)[:4] == str(year)] or [0]
        mean_h = pop.health[np.ix_(idx, year_steps)].mean(axis=1)
        score = mean_h / np.sqrt(1.25) + rng.normal(0, 0.25, len(idx))
        cuts = grade_cuts()
        grade = np.array(["D", "C", "B", "A"])[np.searchsorted(cuts, score)]
        new = pop.established[idx] >= np.datetime64(f"{year - 1}-07-01")
        grade = np.where(new, "M", grade)
        published = published_month.astype("datetime64[D]") + _days(rng, len(idx), 9, 24)
        frames.append(pd.DataFrame({
            "uscc": pop.codes[idx], "year": year, "grade": grade, "published_date": published,
            "reported_date": published + _days(rng, len(idx), 1, 10)}))
    return _published(pd.concat(frames, ignore_index=True) if frames else _empty(
        ["uscc", "year", "grade", "published_date", "reported_date"]), pop)


def _empty(columns: list[str]) -> pd.DataFrame:
    return pd.DataFrame({c: pd.Series(dtype="datetime64[s]" if c.endswith("date") else "str") for c in columns})


UTILITIES = {
    # name: (account prefix, usage at 100k yuan sales, price, season, who has an account, decimals)
    "electricity": ("0701", P.KWH_AT_100K, P.ELECTRICITY_PRICE, ELECTRICITY_SEASON, None, 0),
    "water": ("SW", P.WATER_M3_AT_100K, P.WATER_PRICE, WATER_SEASON, {"default": 0.85}, 1),
    "gas": ("RQ", P.GAS_M3_AT_100K, P.GAS_PRICE, GAS_SEASON, P.GAS_USERS, 1),
}


def utility(kind: str, pop: Population, rng: np.random.Generator) -> pd.DataFrame:
    """Monthly bills of one utility for every account holder while it is alive."""
    prefix, usage_table, price, season, holders, decimals = UTILITIES[kind]
    cal = pop.calendar
    has_account = ~pop.dormant
    if holders is not None:
        has_account &= rng.random(pop.n) < by_section(holders, pop.section)
    entity, step = _month_cells(pop, pop.alive & has_account[:, None])
    h = pop.health[entity, step]
    base = by_section(usage_table, pop.section[entity])
    if kind == "electricity":
        base = np.where(pop.chemical[entity], P.CHEMICAL_KWH, base)
    month_of_year = (cal.start + step).astype(int) % 12
    usage = (base * np.exp(0.8 * (pop.activity[entity, step] - np.log(100_000)))
             * np.exp(np.array(season)[month_of_year] + rng.normal(0, 0.10, len(entity))))
    idle = (h < -2.2) & (rng.random(len(entity)) < 0.6)
    usage = np.round(np.where(idle, 0.0, usage), decimals)
    billed = _fen(usage * price)
    in_arrears = rng.random(len(entity)) < sigmoid(-2.8 - 1.8 * h)
    paid_share = sigmoid(0.3 + 1.2 * h) * rng.uniform(0.3, 1.0, len(entity))
    paid = np.where(in_arrears, np.round(billed * paid_share).astype(np.int64), billed)
    df = pd.DataFrame({
        "uscc": pop.codes[entity], "account_no": np.char.add(prefix, zero_padded(pop.index, 10))[entity],
        "period": cal.month_start(step), "usage": usage, "billed": billed, "paid": paid, "arrears": billed - paid,
        "reported_date": cal.month_start(step + 1) + _days(rng, len(entity), 4, 19),
    })
    return _published(df, pop)


def court_executions(pop: Population, rng: np.random.Generator, chunk: int) -> pd.DataFrame:
    """Enforcement cases: distress filings plus banks suing after a default. Returns every case,
    including its health at filing (``_health``) for the dishonest list and seizures."""
    cal = pop.calendar
    multiplier = np.where(np.isin(pop.section, ["E", "K"]), 2.0, 1.0)
    mask = pop.alive[:, : cal.months] & ~pop.dormant[:, None]
    mask &= rng.random(mask.shape) < sigmoid(-8.0 - 1.6 * pop.health[:, : cal.months]) * multiplier[:, None]
    entity, step = np.nonzero(mask)
    amount = np.exp(np.log(80_000) + rng.normal(0, 1.0, len(entity)))
    loans = pop.loans
    sued = loans["defaulted"] & (rng.random(len(loans["entity"])) < 0.7)
    suit_step = loans["default_step"] + rng.integers(2, 7, len(sued))
    sued &= suit_step < np.minimum(cal.months, pop.exit_step[loans["entity"]])
    entity = np.concatenate([entity, loans["entity"][sued]])
    step = np.concatenate([step, suit_step[sued]])
    amount = np.concatenate([amount, loans["amount"][sued] * rng.uniform(0.6, 1.1, sued.sum())])
    n = len(entity)
    filing = cal.month_start(step) + _days(rng, n, 0, 27)
    h = pop.health[entity, step]
    duration_months = rng.geometric(sigmoid(-1.2 + 0.9 * h))
    closing = filing + (duration_months * 30 + rng.integers(-10, 10, n)).clip(5) * DAY
    closing = np.where(closing <= cal.end_date, closing, NAT)
    years = filing.astype("datetime64[Y]").astype(str)
    courts = np.array([d[2:] for d in pop.district[entity]], dtype=str)
    case_no = np.char.add(np.char.add(np.char.add(np.char.add("(", years), ")鄂"), courts),
                          np.char.add(np.char.add("执", serial(chunk, np.arange(n))), "号"))
    return pd.DataFrame({"case_no": case_no, "uscc": pop.codes[entity], "filing_date": filing,
                         "amount": _fen(np.round(amount, 2)), "closing_date": closing,
                         "_entity": entity, "_health": h})


def dishonest_debtors(cases: pd.DataFrame, pop: Population, rng: np.random.Generator) -> pd.DataFrame:
    """Cases still unpaid three months after filing may put the debtor on the dishonest list;
    paying (closing the case) removes it."""
    n = len(cases)
    listing = cases["filing_date"].to_numpy() + _days(rng, n, 90, 180)
    closing = cases["closing_date"].to_numpy()
    open_then = np.isnat(closing) | (closing > listing)
    exists = listing <= pop.last_day[cases["_entity"].to_numpy()]
    listed = open_then & exists & (rng.random(n) < sigmoid(-1.6 - 1.2 * cases["_health"].to_numpy()))
    removal = np.where(np.isnat(closing), NAT, closing + _days(rng, n, 0, 10))
    df = pd.DataFrame({"case_no": cases["case_no"], "uscc": cases["uscc"], "listing_date": listing,
                       "removal_date": removal})[listed]
    df = df[df["listing_date"] <= pop.calendar.end_date]
    return versions(df, ["listing_date", "removal_date"], pop, rng, (0, 5))


def real_estate(pop: Population, rng: np.random.Generator, cases: pd.DataFrame, chunk: int) -> pd.DataFrame:
    """Property owned by entities; mortgages, releases, court seizures and their lifting."""
    cal = pop.calendar
    owner_p = np.array([P.OWNS_PROPERTY[k] for k in pop.kind]) * np.exp(0.25 * (pop.log_size - np.log(100_000)))
    owns = ~pop.dormant & (rng.random(pop.n) < owner_p.clip(0, 0.9))
    count = np.where(owns, 1 + rng.poisson(0.4, pop.n), 0)
    entity = np.repeat(np.arange(pop.n), count)
    n = len(entity)
    land = rng.random(n) < np.where(np.isin(pop.section[entity], ["C", "A"]), 0.55, 0.25)
    area = np.round(np.where(land, np.exp(rng.normal(np.log(5_000), 0.9, n)), np.exp(rng.normal(np.log(180), 0.8, n))), 2)
    value_wan = np.round(area * np.where(land, 0.045, 0.75) * np.exp(rng.normal(0, 0.3, n)), 2).clip(0.01)
    established, last_day = pop.established[entity], pop.last_day[entity]
    span = (last_day - established).astype(int).clip(1)
    registered = established + (rng.random(n) * span).astype(np.int64) * DAY
    mortgaged = rng.random(n) < 0.35
    mortgage = np.where(mortgaged, registered + (rng.random(n) * (last_day - registered).astype(int)).astype(np.int64) * DAY, NAT)
    released = mortgaged & (rng.random(n) < 0.5)
    release = np.where(released, mortgage + _days(rng, n, 180, 1080), NAT)
    seizure, lifted = np.full(n, NAT), np.full(n, NAT)
    distressed = cases[cases["_health"] < -1.5].drop_duplicates("_entity")
    first_case = dict(zip(distressed["_entity"], zip(distressed["filing_date"], distressed["closing_date"])))
    for i in np.flatnonzero(np.isin(entity, list(first_case))):
        filed, closed = first_case[entity[i]]
        seized = filed + np.timedelta64(int(rng.integers(20, 90)), "D")
        still_open = pd.isna(closed) or closed > seized
        if rng.random() < 0.5 and registered[i] < filed and still_open and seized <= last_day[i]:
            seizure[i] = seized
            lifted[i] = closed + np.timedelta64(int(rng.integers(1, 20)), "D") if not pd.isna(closed) else NAT
    for column in (mortgage, release, seizure, lifted):
        column[column > cal.end_date] = NAT
    cert_year = registered.astype("datetime64[Y]").astype(str)
    certificate = np.char.add(np.char.add(np.char.add("鄂(", cert_year), ")宜昌市不动产权第"),
                              np.char.add(serial(chunk, np.arange(n)), "号"))
    df = pd.DataFrame({"certificate_no": certificate, "uscc": pop.codes[entity],
                       "property_type": np.where(land, "land", "building"), "area_m2": area,
                       "appraised_value": np.round(value_wan * 1_000_000).astype(np.int64),
                       "registration_date": registered, "mortgage_date": mortgage,
                       "mortgage_release_date": release, "seizure_date": seizure,
                       "seizure_release_date": lifted})
    stages = ["registration_date", "mortgage_date", "mortgage_release_date", "seizure_date", "seizure_release_date"]
    return versions(df, stages, pop, rng, (3, 20))


IP_KINDS = {  # kind: (number prefix, months to grant (low, high), share never granted)
    "invention_patent": ("1", (20, 36), 0.4), "utility_model": ("2", (6, 12), 0.05),
    "design_patent": ("3", (4, 9), 0.05), "trademark": ("TM", (9, 13), 0.1),
    "software_copyright": ("SR", (1, 3), 0.0),
}


def intellectual_property(pop: Population, rng: np.random.Generator, chunk: int) -> pd.DataFrame:
    """Patents, trademarks and software copyrights, with grants, lapses and pledges."""
    enterprise = pop.kind == "enterprise"
    patent_p = np.where(pop.section == "C", P.HOLDS_PATENT["manufacturer"], P.HOLDS_PATENT["enterprise"])
    counts = {
        "invention_patent": np.where(enterprise & (rng.random(pop.n) < patent_p * 0.5), rng.poisson(1.5, pop.n) + 1, 0),
        "utility_model": np.where(enterprise & (rng.random(pop.n) < patent_p), rng.poisson(2.0, pop.n) + 1, 0),
        "design_patent": np.where(enterprise & (rng.random(pop.n) < patent_p * 0.4), rng.poisson(1.0, pop.n) + 1, 0),
        "trademark": np.where(rng.random(pop.n) < np.array([P.HOLDS_TRADEMARK[k] for k in pop.kind]),
                              rng.poisson(1.0, pop.n) + 1, 0),
        "software_copyright": np.where(enterprise & (rng.random(pop.n) < by_section(P.HOLDS_SOFTWARE, pop.section)),
                                       rng.poisson(2.5, pop.n) + 1, 0),
    }
    frames = []
    offset = 0
    for kind, count in counts.items():
        prefix, (low, high), never = IP_KINDS[kind]
        entity = np.repeat(np.arange(pop.n), count)
        n = len(entity)
        span = (pop.last_day[entity] - pop.established[entity]).astype(int).clip(1)
        applied = pop.established[entity] + (rng.random(n) * span).astype(np.int64) * DAY
        granted = np.where(rng.random(n) < never, NAT, applied + (rng.integers(low, high + 1, n) * 30.44).astype(np.int64) * DAY)
        lapse_p = sigmoid(-2.0 - 0.8 * pop.quality[entity])
        lapse = np.where(~np.isnat(granted) & (rng.random(n) < lapse_p), granted + _days(rng, n, 365, 1500), NAT)
        pledge = np.where(~np.isnat(granted) & (rng.random(n) < 0.05), granted + _days(rng, n, 30, 700), NAT)
        year = applied.astype("datetime64[Y]").astype(str)
        number = serial(chunk, np.arange(offset, offset + n))
        offset += n
        ip_no = np.char.add(np.char.add(year, prefix), number)
        frames.append(pd.DataFrame({"ip_no": ip_no, "uscc": pop.codes[entity], "ip_type": kind,
                                    "application_date": applied, "grant_date": granted,
                                    "lapse_date": lapse, "pledge_date": pledge}))
    df = pd.concat(frames, ignore_index=True)
    last_day = pd.Series(pop.last_day, index=pop.codes)[df["uscc"]].to_numpy()
    for column in ("grant_date", "lapse_date", "pledge_date"):
        df.loc[df[column].to_numpy() > last_day, column] = pd.NaT
    return versions(df, ["application_date", "grant_date", "lapse_date", "pledge_date"], pop, rng, (10, 40))


PENALTY_ABBREVIATIONS = ("市监", "环", "应急", "建", "交", "卫", "城执", "自然资源", "税")
PENALTY_TILT = {"C": (1, 4, 3, 1, 1, 1, 1, 1, 1), "E": (1, 1, 2, 5, 1, 1, 2, 2, 1),
                "H": (4, 1, 1, 1, 1, 3, 2, 1, 1), "G": (1, 1, 1, 1, 5, 1, 1, 1, 1),
                "default": (4, 1, 1, 1, 1, 1, 2, 1, 2)}


def administrative_penalties(pop: Population, rng: np.random.Generator, chunk: int) -> pd.DataFrame:
    """Penalties (双公示) with publication dates and, for some, credit repair."""
    cal = pop.calendar
    multiplier = np.select([pop.chemical, pop.section == "C", np.isin(pop.section, ["E", "H"])], [2.5, 1.5, 1.4], 1.0)
    mask = pop.alive[:, : cal.months] & ~pop.dormant[:, None]
    mask &= rng.random(mask.shape) < sigmoid(-6.9 - 0.7 * pop.health[:, : cal.months]) * multiplier[:, None]
    entity, step = np.nonzero(mask)
    n = len(entity)
    decision = cal.month_start(step) + _days(rng, n, 0, 27)
    severities = np.array(list(P.PENALTY_SEVERITY_SHARES))
    severity = severities[choose(rng, np.broadcast_to(np.array(list(P.PENALTY_SEVERITY_SHARES.values())), (n, 4)))]
    low_high = np.array([P.PENALTY_AMOUNT_WAN[s] for s in severity], dtype=float).reshape(-1, 2)
    amount_wan = np.round(np.exp(rng.uniform(np.log(low_high[:, 0]), np.log(low_high[:, 1]))), 2)
    late = rng.random(n) < P.PENALTY_PUBLISHED_LATE
    working_days = np.where(late, rng.integers(8, 25, n), rng.integers(1, 8, n))
    published = np.busday_offset(decision, working_days, roll="forward")
    min_months = np.array([P.PENALTY_MIN_PUBLICATION_MONTHS[s] for s in severity], dtype=float)
    repaired = (severity != "severe") & (rng.random(n) < np.where(severity == "minor", 0.6, 0.4))
    repair = published + ((min_months * 30.44).astype(np.int64) + rng.exponential(120, n).astype(np.int64)) * DAY
    repair = np.where(repaired & (repair <= cal.end_date), repair, NAT)
    tilt = np.array([PENALTY_TILT.get(s, PENALTY_TILT["default"]) for s in pop.section[entity]],
                    dtype=float).reshape(-1, len(P.PENALTY_DEPARTMENTS))
    department = choose(rng, tilt / tilt.sum(axis=1, keepdims=True))
    year = decision.astype("datetime64[Y]").astype(str)
    decision_no = np.char.add(np.char.add(np.char.add("宜", np.array(PENALTY_ABBREVIATIONS)[department]),
                                          np.char.add("罚决〔", year)),
                              np.char.add(np.char.add("〕", serial(chunk, np.arange(n))), "号"))
    df = pd.DataFrame({"decision_no": decision_no, "uscc": pop.codes[entity],
                       "department": np.array(P.PENALTY_DEPARTMENTS)[department], "decision_date": decision,
                       "severity": severity, "amount": np.round(amount_wan * 1_000_000).astype(np.int64),
                       "published_date": published, "repair_date": repair})
    df = df[df["published_date"] <= cal.end_date]
    return versions(df, ["published_date", "repair_date"], pop, rng, (0, 3))


def credit_commitments(pop: Population, rng: np.random.Generator, chunk: int) -> pd.DataFrame:
    """Commitments, reported when made and again once verified as kept or broken."""
    cal = pop.calendar
    mask = pop.alive[:, : cal.months] & ~pop.dormant[:, None]
    mask &= rng.random(mask.shape) < P.COMMITMENTS_PER_YEAR / 12
    entity, step = np.nonzero(mask)
    n = len(entity)
    made = cal.month_start(step) + _days(rng, n, 0, 27)
    verified = made + _days(rng, n, 30, 180)
    verify_step = np.minimum(step + ((verified - made).astype(int) // 30), pop.health.shape[1] - 1)
    broken = rng.random(n) < sigmoid(-3.2 - 1.3 * pop.health[entity, verify_step])
    types = np.array(list(P.COMMITMENT_TYPES))
    kind = types[choose(rng, np.broadcast_to(np.array(list(P.COMMITMENT_TYPES.values())), (n, len(types))))]
    year = made.astype("datetime64[Y]").astype(str)
    df = pd.DataFrame({
        "commitment_no": np.char.add(np.char.add(np.char.add("宜信承〔", year), "〕"), np.char.add(serial(chunk, np.arange(n)), "号")),
        "uscc": pop.codes[entity],
        "department": np.array(P.COMMITMENT_DEPARTMENTS)[rng.integers(0, len(P.COMMITMENT_DEPARTMENTS), n)],
        "commitment_type": kind, "commitment_date": made, "status": np.where(broken, "broken", "kept"),
        "verified_date": np.where(verified <= cal.end_date, verified, NAT)})
    return versions(df, ["commitment_date", "verified_date"], pop, rng, (1, 10),
                    dependants={"verified_date": ("status", "pending")})


def loan_outcomes(pop: Population, rng: np.random.Generator, chunk: int) -> tuple[pd.DataFrame, pd.DataFrame]:
    """What banks report back at the window's end, and the ground truth behind each loan."""
    cal = pop.calendar
    loans = pop.loans
    n = len(loans["entity"])
    entity, step = loans["entity"], loans["step"]
    grant = cal.month_start(step) + loans["day"] * DAY
    default_date = cal.month_start(loans["default_step"]) + _days(rng, n, 0, 27)
    defaulted = loans["defaulted"]
    known_default = defaulted & (default_date <= cal.end_date)
    month_start = grant.astype("datetime64[M]")
    matured = (month_start + 12).astype("datetime64[D]") + (grant - month_start.astype("datetime64[D]")) <= cal.end_date
    flag = np.where(known_default, "Y", np.where(matured, "N", None))
    end_step = cal.months - 1
    dpd = np.where(rng.random(n) < 0.06, rng.integers(1, 30, n), 0)
    dpd = np.where(rng.random(n) < 0.02, rng.integers(30, 90, n), dpd)
    months_in_default = (end_step - loans["default_step"]).clip(0)
    dpd = np.where(known_default, 90 + np.minimum(months_in_default * 30, 600), dpd)
    soon = defaulted & ~known_default & (loans["default_step"] - end_step <= 2)
    dpd = np.where(soon, rng.integers(30, 90, n), dpd)
    bank_names = np.array(P.BANKS)[loans["bank"]]
    bank_codes = np.array([f"B{i + 1:02d}" for i in range(len(P.BANKS))])[loans["bank"]]
    loan_no = np.char.add(np.char.add(bank_codes, grant.astype("datetime64[M]").astype(str).astype("U7")), serial(chunk, np.arange(n)))
    reported = pd.DataFrame({
        "loan_no": loan_no, "uscc": pop.codes[entity], "bank": bank_names, "grant_date": grant,
        "amount": loans["amount"] * 100, "term_months": loans["term"], "worst_dpd": dpd,
        "default_12m": flag, "reported_date": np.full(n, cal.end_date)})
    future = np.arange(pop.sales.shape[1])
    following = (future[None, :] > step[:, None]) & (future[None, :] <= step[:, None] + 12)
    capacity = (pop.sales[entity] * following).sum(axis=1)
    truth = pd.DataFrame({
        "loan_no": loan_no, "uscc": pop.codes[entity], "grant_date": grant, "amount": loans["amount"] * 100,
        "true_pd": loans["true_pd"], "defaulted_12m": defaulted, "default_date": np.where(defaulted, default_date, NAT),
        "realised_capacity_12m": _fen(capacity)})
    return reported, truth


def entity_truth(pop: Population) -> pd.DataFrame:
    """The hidden state of every entity and its realised capacity after the window."""
    cal = pop.calendar
    h_params = P.HEALTH
    after = slice(cal.months, cal.months + 12)
    end_step = cal.months - 1
    young = (pop.age_years(end_step) < 2).astype(float)
    leverage = np.log(P.LOAN_MEDIAN / (12 * np.exp(pop.log_size)))
    pd_end = sigmoid(h_params.pd_intercept + h_params.pd_health * pop.health[:, end_step] + h_params.pd_owner * pop.owner
                     + h_params.pd_young * young + h_params.pd_leverage * leverage)
    return pd.DataFrame({
        "uscc": pop.codes, "entity_type": pop.kind, "quality": pop.quality, "owner_factor": pop.owner,
        "health_at_end": pop.health[:, end_step], "dormant": pop.dormant, "fixed_quota": pop.fixed_quota,
        "alive_at_end": pop.alive[:, end_step], "capacity_next_12m": _fen(pop.sales[:, after].sum(axis=1)),
        "true_pd_at_end": pd_end})
