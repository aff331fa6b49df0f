"""Distress events: outcomes every enterprise produces every month, declared once.

Banks report defaults only on the loans they granted, a few per cent of a few per cent of the
city. Every enterprise, borrower or not, also leaves outcomes in the lake each month that a
creditor would call distress: tax it does not pay, returns it files late, a creditor enforcing
a judgment, a listing as a dishonest debtor, a tax credit grade falling to C or D, closing down.
The first stage of the PD model (:mod:`models.stages`) learns the probability of any of these in
the 12 months after an as_of from the city's enterprise-months (outside the loan book); the
banks' defaults then only have to correct it.

Each :class:`ProxyEvent` names the profile feature it is read from (so the event is measured by
exactly the rule that computes the feature, point in time), the rule, and why it is a fair proxy
of default. An event is read from two profiles of the same enterprise: as of ``as_of`` and as of
``as_of + horizon``, both computed by :func:`features.profile.compute.profiles_for` on the lake as
it stands, so a monthly window of the later profile covers exactly the ``horizon`` months after
the earlier profile's anchor month. Labels exist only where the lake already holds the whole
horizon (:func:`label_end_day`).
"""

from __future__ import annotations

from dataclasses import dataclass

import numpy as np
import pandas as pd

from features.profile import compute, families
from features.profile.pointintime import NEVER, Requests, seen
from features.registry import BY_NAME
from features.schemas import SOURCES

HORIZON_MONTHS = 12
"""Distress is looked for in the 12 months after as_of: a loan's usual term on the platform."""

RULES = ("rises", "at_least", "becomes", "exits")


@dataclass(frozen=True)
class ProxyEvent:
    """One distress event, read from a profile feature (``feature``) by ``rule``:

    * ``rises``: the feature (a count of events ever recorded) is higher at the horizon;
    * ``at_least``: the feature at the horizon (a count over its 12-month window, which is then
      the horizon itself) reaches ``threshold``;
    * ``becomes``: a flag off at as_of is on at the horizon;
    * ``exits``: the enterprise is deregistered by the horizon (``feature`` is unused).
    """

    name: str
    feature: str
    rule: str
    threshold: float
    zh: str
    en: str
    why: str

    def __post_init__(self) -> None:
        if self.rule not in RULES:
            raise ValueError(f"proxy event {self.name}: rule must be one of {RULES}; got {self.rule!r}")
        if self.rule != "exits" and self.feature not in BY_NAME:
            raise ValueError(f"proxy event {self.name}: unknown feature {self.feature!r}")
        if self.rule == "at_least" and BY_NAME[self.feature].window_months != HORIZON_MONTHS:
            raise ValueError(f"proxy event {self.name}: an at_least rule needs a feature whose window is the "
                             f"{HORIZON_MONTHS}-month horizon")

    @property
    def sources(self) -> tuple[str, ...]:
        return ("enterprise_registry",) if self.rule == "exits" else BY_NAME[self.feature].sources

    def occurred(self, now: pd.DataFrame, later: pd.DataFrame, alive_later: np.ndarray) -> np.ndarray:
        """Per row: did the event happen between the two profiles?"""
        if self.rule == "exits":
            return ~alive_later
        after = later[self.feature].to_numpy(dtype=float, na_value=np.nan)
        if self.rule == "at_least":
            return np.nan_to_num(after, nan=0) >= self.threshold
        before = now[self.feature].to_numpy(dtype=float, na_value=np.nan)
        if self.rule == "rises":
            return np.nan_to_num(after, nan=0) > np.nan_to_num(before, nan=0)
        return (np.nan_to_num(after, nan=0) >= 1) & ~(np.nan_to_num(before, nan=0) >= 1)


PROXY_EVENTS: tuple[ProxyEvent, ...] = (
    ProxyEvent("court_case", "court_cases_total", "rises", 0, "新增被执行案件", "a new enforcement case",
               "a creditor obtained a judgment and asked the court to enforce it: the enterprise did not pay a debt"),
    ProxyEvent("dishonest_listing", "dishonest_listed_now", "becomes", 0, "被列入失信被执行人名单",
               "listed as a dishonest debtor", "it did not perform a court's enforcement order it could perform"),
    ProxyEvent("tax_arrears", "tax_months_in_arrears_12m", "at_least", 3, "12个月内3个月及以上欠税",
               "tax arrears in 3 or more of the 12 months",
               "unpaid tax is a debt to the state; three months of it is persistent, not a slip"),
    ProxyEvent("late_filing", "tax_months_late_12m", "at_least", 6, "12个月内6个月及以上逾期申报",
               "tax returns filed late in 6 or more of the 12 months",
               "chronic late filing goes with disorderly books and cash strain"),
    ProxyEvent("electricity_arrears", "elec_months_in_arrears_12m", "at_least", 6, "12个月内6个月及以上欠电费",
               "electricity arrears in 6 or more of the 12 months",
               "a bill left unpaid half the year is a creditor (the utility) not being paid"),
    ProxyEvent("tax_grade_c_or_d", "tax_grade_is_c_or_d", "becomes", 0, "纳税信用级别降为C级或D级",
               "the tax credit grade fell to C or D", "the tax office's own judgement of serious non-compliance"),
    ProxyEvent("deregistered", "", "exits", 0, "注销或吊销", "deregistered",
               "an enterprise that closes within a loan's term leaves the loan unpaid"),
)
"""The distress events, any of which makes an enterprise-month distressed."""


def label_end_day(records: dict[str, pd.DataFrame]) -> int:
    """The newest day the lake knows of: an as_of whose horizon ends after it has no label yet."""
    days = [int(frame[column].to_numpy()[frame[column].to_numpy() < NEVER].max())
            for source, frame in records.items() if len(frame)
            for column in [SOURCES[source].known_date] if (frame[column].to_numpy() < NEVER).any()]
    if not days:
        raise ValueError("the lake holds no records")
    return max(days)


def horizon_days(as_of_days: np.ndarray, months: int = HORIZON_MONTHS) -> np.ndarray:
    """as_of plus ``months`` calendar months, as day numbers (the same day of the month, clipped
    to the month's end)."""
    days = np.asarray(as_of_days, dtype=np.int64).astype("datetime64[D]")
    later = pd.DatetimeIndex(days) + pd.DateOffset(months=months)
    return later.to_numpy().astype("datetime64[D]").astype(np.int64)


def month_ends(first_day: int, last_day: int) -> np.ndarray:
    """The last day of every calendar month whose last day lies in [first_day, last_day]."""
    months = np.arange(np.datetime64(int(first_day), "D").astype("datetime64[M]"),
                       np.datetime64(int(last_day), "D").astype("datetime64[M]") + 1)
    ends = ((months + 1).astype("datetime64[D]") - 1).astype(np.int64)
    return ends[(ends >= first_day) & (ends <= last_day)]


def enterprise_months(records: dict[str, pd.DataFrame], as_of_days: np.ndarray, max_rows: int | None = None,
                      seed: int = 0, exclude=None) -> tuple[np.ndarray, np.ndarray]:
    """Every enterprise alive at each of ``as_of_days`` (codes, days), leaving out the codes in
    ``exclude``, a uniform sample of at most ``max_rows`` of them when given (the same seed, the
    same sample)."""
    left_out = pd.Index(list(exclude or []), dtype=object)
    codes, days = [], []
    for day in as_of_days:
        alive = compute.alive_on(int(day), records)
        alive = alive[left_out.get_indexer(alive) < 0] if len(left_out) else alive
        codes.append(alive)
        days.append(np.full(len(alive), int(day), dtype=np.int64))
    uscc = np.concatenate(codes) if codes else np.zeros(0, dtype=object)
    day = np.concatenate(days) if days else np.zeros(0, dtype=np.int64)
    if max_rows is not None and len(uscc) > max_rows:
        keep = np.sort(np.random.default_rng(seed).choice(len(uscc), max_rows, replace=False))
        uscc, day = uscc[keep], day[keep]
    return uscc, day


def distress_frame(records: dict[str, pd.DataFrame], uscc, as_of_days, delivered: frozenset[str] | None = None,
                   months: int = HORIZON_MONTHS) -> pd.DataFrame:
    """For each (enterprise, as_of): its profile as of then, one 0/1 column per proxy event
    (``event_<name>``) over the next ``months`` months, and ``distress`` (any of them)."""
    uscc = np.asarray(uscc, dtype=object)
    as_of_days = np.asarray(as_of_days, dtype=np.int64)
    later_days = horizon_days(as_of_days, months)
    now = compute.profiles_for(uscc, as_of_days, records, delivered)
    later = compute.profiles_for(uscc, later_days, records, delivered)
    requests = Requests.make(uscc, later_days)
    alive_sorted = families.alive(requests, seen(requests, compute.REGISTRY, records[compute.REGISTRY]))
    alive_later = alive_sorted[np.argsort(requests.order, kind="stable")]
    any_event = np.zeros(len(uscc), dtype=bool)
    events = {}
    for event in PROXY_EVENTS:
        if delivered is not None and not set(event.sources) <= delivered:
            continue
        happened = event.occurred(now, later, alive_later)
        events[f"event_{event.name}"] = happened.astype(np.int64)
        any_event |= happened
    return now.assign(**events, distress=any_event.astype(np.int64))


def proxy_events_markdown() -> str:
    """The declared events as a Markdown table, for the report and the docs."""
    lines = ["| event | 中文 | read from | rule | why it is a fair proxy |", "|---|---|---|---|---|"]
    for e in PROXY_EVENTS:
        rule = {"rises": "count rises", "at_least": f"≥ {e.threshold:g} in the {HORIZON_MONTHS} months",
                "becomes": "turns on", "exits": "deregistered"}[e.rule]
        lines.append(f"| {e.en} | {e.zh} | {e.feature or 'registry'} | {rule} | {e.why} |")
    return "\n".join(lines)
