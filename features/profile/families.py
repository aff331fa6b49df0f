"""The feature families: what each registry feature is, computed for a batch of requests.

Every function takes the :class:`~features.profile.pointintime.Requests` and what they see of
one or more sources, and returns ``{feature name: array with one value per request}``. The
registry (:mod:`features.registry`) declares the meaning; a test holds the two together. Money
leaves here in yuan; NaN means the source holds nothing for the enterprise.

Nothing here looks beyond one request's own records, so a feature is the same whichever other
enterprises are built beside it (incremental = full, pandas = Dask).
"""

from __future__ import annotations

import numpy as np

from features.profile.pointintime import NEVER, PERIOD, Requests, Seen
from features.registry import BY_NAME, COVERED_SOURCES, DAYS_PER_MONTH, GRADE_POINTS, MONTHLY_HISTORY, UTILITY_KINDS

FEN_PER_YUAN = 100.0


def window_days(months: int) -> int:
    """A window of whole months in days (a month is 365/12 days)."""
    return int(round(months * DAYS_PER_MONTH))


def _count(seen: Seen, n: int, mask: np.ndarray | None = None) -> np.ndarray:
    q = seen.q if mask is None else seen.q[mask]
    return np.bincount(q, minlength=n).astype(np.float64)


def _total(seen: Seen, n: int, values: np.ndarray, mask: np.ndarray | None = None) -> np.ndarray:
    """Per-request sums of integer amounts (fen): exact, so the same in whatever order records come."""
    if mask is not None:
        return np.bincount(seen.q[mask], weights=values[mask], minlength=n)
    return np.bincount(seen.q, weights=values, minlength=n)


def _latest(seen: Seen, n: int, days: np.ndarray) -> np.ndarray:
    """Per request, the greatest of ``days`` among its records (-1 when it has none)."""
    out = np.full(n, -1, dtype=np.int64)
    np.maximum.at(out, seen.q, days)
    return out


def declared_months(feature: str) -> int:
    """The window the registry declares for ``feature``. Event families count what it says, so the
    window maturity and the feature list read is the one computed."""
    return BY_NAME[feature].window_months


def _in_window(days: np.ndarray, as_of: np.ndarray, feature: str) -> np.ndarray:
    """Dates in ``feature``'s declared window before as_of: (as_of - window, as_of]."""
    return (days <= as_of) & (days > as_of - window_days(declared_months(feature)))


def _ratio(numerator: np.ndarray, denominator: np.ndarray) -> np.ndarray:
    out = np.full(len(numerator), np.nan)
    np.divide(numerator, denominator, out=out, where=denominator > 0)
    return out


def _only_where(values: np.ndarray, present: np.ndarray) -> np.ndarray:
    """The values where the source holds something for the request, NaN elsewhere."""
    return np.where(present, values, np.nan)


class Monthly:
    """Monthly records of one source as (request × month) matrices; column 0 is the anchor month,
    column k the month k before it. Window features are measured only for requests with a record
    inside this history (``present.any``); ``has_any`` also counts records outside it."""

    def __init__(self, requests: Requests, seen: Seen, columns: dict[str, np.ndarray]):
        n = requests.n
        k = requests.anchor[seen.q] - seen.col(PERIOD)
        inside = (k >= 0) & (k < MONTHLY_HISTORY)
        q, k = seen.q[inside], k[inside]
        self.present = np.zeros((n, MONTHLY_HISTORY), dtype=bool)
        self.present[q, k] = True
        self.values = {}
        for column, values in columns.items():
            matrix = np.zeros((n, MONTHLY_HISTORY))
            matrix[q, k] = values[inside]
            self.values[column] = matrix
        self.has_any = np.bincount(seen.q, minlength=n) > 0
        newest = np.full(n, -1, dtype=np.int64)
        np.maximum.at(newest, seen.q, seen.col(PERIOD))
        self.newest_period = newest

    def total(self, column: str, first: int, last: int) -> np.ndarray:
        """Sum of a column over months first..last-1 before the anchor."""
        return self.values[column][:, first:last].sum(axis=1)

    def months(self, first: int, last: int, mask: np.ndarray | None = None) -> np.ndarray:
        present = self.present[:, first:last]
        return (present if mask is None else present & mask[:, first:last]).sum(axis=1).astype(np.float64)

    def latest(self, column: str) -> np.ndarray:
        """The value in the newest month held within the history; NaN when there is none."""
        newest = np.argmax(self.present, axis=1)
        found = self.present.any(axis=1)
        return np.where(found, self.values[column][np.arange(len(newest)), newest], np.nan)


def _momentum(m: "Monthly", column: str) -> np.ndarray:
    """Log of the mean of the last 3 months held over the mean of the 24 months held: where the
    enterprise stands now against its own usual level (NaN with fewer than 6 months held)."""
    held3, held24 = m.months(0, 3), m.months(0, 24)
    recent = _ratio(m.total(column, 0, 3), held3)
    usual = _ratio(m.total(column, 0, 24), held24)
    return np.where((held3 > 0) & (held24 >= 6), np.log1p(np.nan_to_num(recent)) - np.log1p(np.nan_to_num(usual)), np.nan)


def _log_growth(recent: np.ndarray, earlier: np.ndarray, earlier_present: np.ndarray) -> np.ndarray:
    return np.where(earlier_present, np.log1p(np.maximum(recent, 0)) - np.log1p(np.maximum(earlier, 0)), np.nan)


def tax(requests: Requests, filings: Seen, grades: Seen) -> tuple[dict[str, np.ndarray], Monthly]:
    """Tax returns (sales, lateness, arrears, payments) and the annual tax credit grade; also
    the returns as monthly matrices, for the cross-source features."""
    m = Monthly(requests, filings, {
        "sales": filings.col("sales") / FEN_PER_YUAN, "tax_paid": filings.col("tax_paid") / FEN_PER_YUAN,
        "arrears": filings.col("arrears") / FEN_PER_YUAN, "late": (filings.col("late") == "Y").astype(np.float64)})
    sales = m.values["sales"]
    filer = m.present.any(axis=1)  # a return within the history: window features are measured
    out = {f"tax_sales_{w}m": _only_where(sales[:, :w].sum(axis=1), filer) for w in (3, 6, 12, 24)}
    out["tax_sales_growth_12m"] = _log_growth(sales[:, :12].sum(1), sales[:, 12:24].sum(1), m.present[:, 12:24].any(1))
    out["tax_sales_growth_3m_yoy"] = _log_growth(sales[:, :3].sum(1), sales[:, 12:15].sum(1), m.present[:, 12:15].any(1))
    filed = m.months(0, 12)
    mean = _ratio(sales[:, :12].sum(1), filed)
    spread = np.where(m.present[:, :12], (sales[:, :12] - np.nan_to_num(mean)[:, None]) ** 2, 0.0).sum(1)
    cv = _ratio(np.sqrt(_ratio(spread, filed)), mean)
    out["tax_sales_volatility_12m"] = np.where(filed >= 3, cv, np.nan)
    late = m.values["late"] > 0
    out["tax_months_filed_12m"] = _only_where(filed, filer)
    out["tax_months_late_12m"] = _only_where(m.months(0, 12, late), filer)
    out["tax_late_share_12m"] = _ratio(m.months(0, 12, late), filed)
    out["tax_months_in_arrears_12m"] = _only_where(m.months(0, 12, m.values["arrears"] > 0), filer)
    out["tax_arrears_latest"] = m.latest("arrears")
    out["tax_arrears_12m"] = _only_where(m.total("arrears", 0, 12), filer)
    out["tax_paid_12m"] = _only_where(m.total("tax_paid", 0, 12), filer)
    out["tax_sales_momentum_3m"] = _momentum(m, "sales")
    out["tax_months_late_24m"] = _only_where(m.months(0, 24, late), filer)
    out["tax_months_in_arrears_24m"] = _only_where(m.months(0, 24, m.values["arrears"] > 0), filer)
    out["tax_arrears_share_3m"] = _ratio(m.total("arrears", 0, 3), m.total("arrears", 0, 3) + m.total("tax_paid", 0, 3))
    out["tax_arrears_share_24m"] = _ratio(m.total("arrears", 0, 24), m.total("arrears", 0, 24) + m.total("tax_paid", 0, 24))
    out["tax_months_since_last_filing"] = np.where(m.has_any, np.maximum(requests.anchor - m.newest_period, 0), np.nan)
    out.update(_tax_grades(requests, grades))
    out["has_tax_filings"] = m.has_any.astype(np.float64)
    return out, m


def _tax_grades(requests: Requests, grades: Seen) -> dict[str, np.ndarray]:
    n = requests.n
    q, year, grade = grades.q, grades.col("year"), grades.col("grade").astype(str)
    order = np.lexsort((year, q))
    q, year, grade = q[order], year[order], grade[order]
    is_last = np.r_[q[1:] != q[:-1], True] if len(q) else np.zeros(0, bool)
    latest_grade = np.full(n, None, dtype=object)
    latest_year = np.full(n, -1, dtype=np.int64)
    latest_grade[q[is_last]] = grade[is_last]
    latest_year[q[is_last]] = year[is_last]
    has = latest_year >= 0
    points = np.array([GRADE_POINTS.get(g, np.nan) for g in grade], dtype=np.float64)
    latest_points = np.full(n, np.nan)
    latest_points[q[is_last]] = points[is_last]
    previous_points = np.full(n, np.nan)
    # the grade just before each request's latest: the row before its last row, same request
    second_last = np.zeros(len(q), dtype=bool)
    second_last[:-1] = is_last[1:] & (q[:-1] == q[1:])
    follows = second_last & (year == latest_year[q] - 1)
    previous_points[q[follows]] = points[follows]
    # the latest grade year and the ones before it, as many years as the declared window holds
    recent_a = (grade == "A") & (year > latest_year[q] - declared_months("tax_grade_a_years_3y") // 12)
    return {
        "tax_grade_latest": latest_grade,
        "tax_grade_is_a": _only_where((latest_grade == "A").astype(np.float64), has),
        "tax_grade_is_c_or_d": _only_where(np.isin(latest_grade, ["C", "D"]).astype(np.float64), has),
        "tax_grade_change": latest_points - previous_points,
        "tax_grade_a_years_3y": _only_where(np.bincount(q[recent_a], minlength=n).astype(np.float64), has),
        "has_tax_grade": has.astype(np.float64),
    }


def utilities(requests: Requests, seen_by_source: dict[str, Seen]) -> tuple[dict[str, np.ndarray], dict[str, Monthly]]:
    """Level, seasonally adjusted trend and continuity, idle months and arrears, per utility."""
    out: dict[str, np.ndarray] = {}
    matrices: dict[str, Monthly] = {}
    for source, (prefix, *_rest) in UTILITY_KINDS.items():
        bills = seen_by_source[source]
        m = Monthly(requests, bills, {"usage": bills.col("usage"), "arrears": bills.col("arrears") / FEN_PER_YUAN,
                                      "billed": bills.col("billed") / FEN_PER_YUAN})
        matrices[source] = m
        usage, has = m.values["usage"], m.present.any(axis=1)
        out[f"{prefix}_usage_12m"] = _only_where(m.total("usage", 0, 12), has)
        out[f"{prefix}_usage_trend_yoy"] = _log_growth(usage[:, :3].sum(1), usage[:, 12:15].sum(1),
                                                       m.present[:, 12:15].any(1))
        year_before = usage[:, 12:24]
        comparable = m.present[:, 12:24] & (year_before > 0)
        kept_up = comparable & m.present[:, :12] & (usage[:, :12] >= 0.5 * year_before)
        out[f"{prefix}_continuity_12m"] = _ratio(kept_up.sum(1).astype(np.float64), comparable.sum(1).astype(np.float64))
        # only months since the first bill held count as months without use
        oldest = MONTHLY_HISTORY - 1 - np.argmax(m.present[:, ::-1], axis=1)
        since_first = np.arange(12)[None, :] <= oldest[:, None]
        idle = since_first & (~m.present[:, :12] | (usage[:, :12] <= 0))
        out[f"{prefix}_months_without_use_12m"] = _only_where(idle.sum(1).astype(np.float64), has)
        out[f"{prefix}_arrears_latest"] = m.latest("arrears")
        out[f"{prefix}_months_in_arrears_12m"] = _only_where(m.months(0, 12, m.values["arrears"] > 0), has)
        out[f"{prefix}_months_in_arrears_24m"] = _only_where(m.months(0, 24, m.values["arrears"] > 0), has)
        out[f"{prefix}_arrears_share_24m"] = _ratio(m.total("arrears", 0, 24), m.total("billed", 0, 24))
        out[f"{prefix}_arrears_share_3m"] = _ratio(m.total("arrears", 0, 3), m.total("billed", 0, 3))
        out[f"{prefix}_usage_momentum_3m"] = _momentum(m, "usage")
        out[f"has_{source}"] = m.has_any.astype(np.float64)
    return out, matrices


def consistency(features: dict[str, np.ndarray], returns: Monthly, electricity: Monthly) -> dict[str, np.ndarray]:
    """Whether sales and electricity tell the same story, and arrears across sources."""
    both = returns.present[:, :12] & electricity.present[:, :12]
    count = both.sum(1).astype(np.float64)
    x = np.where(both, returns.values["sales"][:, :12], 0.0)
    y = np.where(both, electricity.values["usage"][:, :12], 0.0)
    mean_x, mean_y = _ratio(x.sum(1), count), _ratio(y.sum(1), count)
    dx = np.where(both, x - np.nan_to_num(mean_x)[:, None], 0.0)
    dy = np.where(both, y - np.nan_to_num(mean_y)[:, None], 0.0)
    covariance, var_x, var_y = (dx * dy).sum(1), (dx * dx).sum(1), (dy * dy).sum(1)
    correlation = _ratio(covariance, np.sqrt(var_x * var_y))
    in_arrears = np.stack([features[name] for name in ("tax_arrears_latest", "elec_arrears_latest",
                                                       "water_arrears_latest", "gas_arrears_latest")])
    held = ~np.isnan(in_arrears)
    return {
        "sales_electricity_corr_12m": np.where(count >= 6, correlation, np.nan),
        "sales_electricity_trend_gap": np.abs(features["tax_sales_growth_3m_yoy"] - features["elec_usage_trend_yoy"]),
        "sources_in_arrears": np.where(held.any(0), (np.nan_to_num(in_arrears) > 0).sum(0), np.nan).astype(np.float64),
    }


def real_estate(requests: Requests, seen: Seen) -> dict[str, np.ndarray]:
    """Properties owned, their value, and the shares mortgaged or seized now."""
    n = requests.n
    as_of = requests.as_of[seen.q]
    value = seen.col("appraised_value")  # fen: integer sums are exact in any order
    mortgaged = (seen.col("mortgage_date") <= as_of) & (seen.col("mortgage_release_date") > as_of)
    seized = (seen.col("seizure_date") <= as_of) & (seen.col("seizure_release_date") > as_of)
    total = _total(seen, n, value)
    count = _count(seen, n)
    return {
        "property_count": count,
        "property_appraised_value": total / FEN_PER_YUAN,
        "property_mortgaged_share": np.where(count > 0, _ratio(_total(seen, n, value, mortgaged), total), np.nan),
        "property_seized_share": np.where(count > 0, _ratio(_total(seen, n, value, seized), total), np.nan),
        "property_mortgages_12m": _count(seen, n, _in_window(seen.col("mortgage_date"), as_of,
                                                             "property_mortgages_12m")),
        "has_real_estate": (count > 0).astype(np.float64),
    }


PATENTS = ("invention_patent", "utility_model", "design_patent")


def intellectual_property(requests: Requests, seen: Seen) -> dict[str, np.ndarray]:
    """Rights in force by kind, recent grants, pledges and lapses."""
    n = requests.n
    as_of = requests.as_of[seen.q]
    kind = seen.col("ip_type").astype(str)
    granted = seen.col("grant_date")
    in_force = (granted <= as_of) & (seen.col("lapse_date") > as_of)
    by_kind = {k: _count(seen, n, in_force & (kind == k)) for k in
               ("invention_patent", "utility_model", "design_patent", "trademark", "software_copyright")}
    return {
        "ip_invention_patents": by_kind["invention_patent"],
        "ip_utility_models": by_kind["utility_model"],
        "ip_design_patents": by_kind["design_patent"],
        "ip_patents_granted_24m": _count(seen, n, np.isin(kind, PATENTS)
                                         & _in_window(granted, as_of, "ip_patents_granted_24m")),
        "ip_trademarks": by_kind["trademark"],
        "ip_software_copyrights": by_kind["software_copyright"],
        "ip_pledged": _count(seen, n, in_force & (seen.col("pledge_date") <= as_of)),
        "ip_lapsed_24m": _count(seen, n, _in_window(seen.col("lapse_date"), as_of, "ip_lapsed_24m")),
        "has_intellectual_property": (_count(seen, n) > 0).astype(np.float64),
    }


def on_dishonest_list(requests: Requests, listings: Seen) -> np.ndarray:
    """Which listings seen put their enterprise on the dishonest-debtor list as of its request
    (not yet removed); the evidence of a knock-out reads the same (features.profile.evidence)."""
    return listings.col("removal_date") > requests.as_of[listings.q]


def serious_within_36m(requests: Requests, seen: Seen) -> np.ndarray:
    """Which penalties seen (repaired ones are already gone) are serious or severe and decided in
    the 36 months before the request."""
    return grave(seen) & _in_window(seen.col("decision_date"), requests.as_of[seen.q], "penalty_serious_36m")


def grave(seen: Seen) -> np.ndarray:
    """Which penalties seen are serious or severe."""
    return np.isin(seen.col("severity").astype(str), ["serious", "severe"])


def court(requests: Requests, cases: Seen, listings: Seen) -> dict[str, np.ndarray]:
    """Enforcement cases (open, recent, ever) and the dishonest-debtor list (repaired ones gone)."""
    n = requests.n
    as_of = requests.as_of[cases.q]
    filed = cases.col("filing_date")
    amount = cases.col("amount")
    open_now = cases.col("closing_date") > as_of
    latest = _latest(cases, n, filed)
    listed_as_of = requests.as_of[listings.q]
    on_list = on_dishonest_list(requests, listings)
    total = _count(cases, n)
    return {
        "court_open_cases": _count(cases, n, open_now),
        "court_open_amount": _total(cases, n, amount, open_now) / FEN_PER_YUAN,
        "court_cases_24m": _count(cases, n, _in_window(filed, as_of, "court_cases_24m")),
        "court_amount_24m": _total(cases, n, amount, _in_window(filed, as_of, "court_amount_24m")) / FEN_PER_YUAN,
        "court_cases_total": total,
        "court_days_since_last_case": np.where(latest >= 0, requests.as_of - latest, np.nan).astype(np.float64),
        "dishonest_listed_now": (_count(listings, n, on_list) > 0).astype(np.float64),
        "dishonest_listings_24m": _count(listings, n, _in_window(listings.col("listing_date"), listed_as_of,
                                                                 "dishonest_listings_24m")),
        "has_court_record": (total > 0).astype(np.float64),
    }


def penalties(requests: Requests, seen: Seen) -> dict[str, np.ndarray]:
    """Administrative penalties by window and severity; repaired ones are already gone."""
    n = requests.n
    as_of = requests.as_of[seen.q]
    decided = seen.col("decision_date")
    serious = serious_within_36m(requests, seen)
    latest = _latest(seen, n, decided)
    return {
        "penalty_count_12m": _count(seen, n, _in_window(decided, as_of, "penalty_count_12m")),
        "penalty_count_36m": _count(seen, n, _in_window(decided, as_of, "penalty_count_36m")),
        "penalty_serious_36m": _count(seen, n, serious),
        "penalty_minor_36m": _count(seen, n, _in_window(decided, as_of, "penalty_minor_36m") & ~grave(seen)),
        "penalty_amount_36m": _total(seen, n, seen.col("amount"), _in_window(decided, as_of, "penalty_amount_36m"))
        / FEN_PER_YUAN,
        "penalty_days_since_last": np.where(latest >= 0, requests.as_of - latest, np.nan).astype(np.float64),
    }


def commitments(requests: Requests, seen: Seen) -> dict[str, np.ndarray]:
    """Credit commitments made, kept and broken."""
    n = requests.n
    as_of = requests.as_of[seen.q]
    made = seen.col("commitment_date")
    status = seen.col("status").astype(str)
    verified = seen.col("verified_date") <= as_of

    def judged(verdict: str, feature: str) -> np.ndarray:
        return _count(seen, n, _in_window(made, as_of, feature) & verified & (status == verdict))

    count = _count(seen, n)
    return {
        "commitment_count_24m": _count(seen, n, _in_window(made, as_of, "commitment_count_24m")),
        "commitment_kept_24m": judged("kept", "commitment_kept_24m"),
        "commitment_broken_24m": judged("broken", "commitment_broken_24m"),
        "commitment_kept_share_24m": _ratio(judged("kept", "commitment_kept_share_24m"),
                                            judged("kept", "commitment_kept_share_24m")
                                            + judged("broken", "commitment_kept_share_24m")),
        "commitment_pending": _count(seen, n, ~verified | (status == "pending")),
        "has_commitments": (count > 0).astype(np.float64),
    }


def firmographics(requests: Requests, registry: Seen) -> dict[str, np.ndarray]:
    """Age, kind, industry, district and capital from the registry version known at as_of."""
    n = requests.n
    out: dict[str, np.ndarray] = {}
    for column in ("entity_type", "industry_section", "district_code"):
        values = np.full(n, None, dtype=object)
        values[registry.q] = registry.col(column)
        out[column] = values
    age = np.full(n, np.nan)
    age[registry.q] = (requests.as_of[registry.q] - registry.col("established_date")) / 365.25
    capital = np.full(n, np.nan)
    capital[registry.q] = registry.col("registered_capital") / FEN_PER_YUAN
    out["firm_age_years"] = age
    out["registered_capital"] = capital
    return out


def months_before_existence(requests: Requests, registry: Seen, months: int) -> np.ndarray:
    """Per request: how many of the ``months`` calendar months ending at its anchor month passed
    before the enterprise was established (a month it did not exist in cannot hold a return; it
    is never counted against it)."""
    established = np.full(requests.n, np.iinfo(np.int64).min, dtype=np.int64)  # unknown: it always existed
    days = np.asarray(registry.col("established_date"), dtype=np.int64)
    known = days < NEVER
    established[registry.q[known]] = days[known].astype("datetime64[D]").astype("datetime64[M]").astype(np.int64)
    first = requests.anchor - (months - 1)
    return np.clip(established - first, 0, months).astype(np.float64)


def coverage_count(features: dict[str, np.ndarray]) -> np.ndarray:
    """How many of the covered sources hold any record of the enterprise (a source not delivered
    on time, its flag missing, counts as none)."""
    return np.nansum([np.asarray(features[name], dtype=np.float64) for name in COVERED_SOURCES], axis=0)


def alive(requests: Requests, registry: Seen) -> np.ndarray:
    """Per request: the registry version known at as_of says the entity exists on as_of."""
    out = np.zeros(requests.n, dtype=bool)
    out[registry.q] = registry.col("deregistered_date") > requests.as_of[registry.q]
    return out

