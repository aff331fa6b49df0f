"""The synthetic city's population: who the entities are and how healthy they are, month by month.

One :class:`Population` covers a chunk of entities. Everything is drawn from a generator seeded
by ``(seed, chunk index)``, so a city is identical for a seed whatever the machine, and a chunk
can be generated without the others (1,000,000 entities never sit in memory at once).

The hidden state is a monthly health ``h = quality + x`` (AR(1) with shocks, see
:class:`~features.synth.params.LatentHealth`). Loans are granted more often to healthy entities;
each loan's true probability of default is a logistic function of health at grant, age, leverage
and an owner factor that no department records. A default then pushes health down, so arrears,
court cases and exits follow it in the records, as they do in a real city.
"""

from __future__ import annotations

from dataclasses import dataclass
from functools import lru_cache
from statistics import NormalDist

import numpy as np

from features import schemas, uscc
from features.synth import params as P

FUTURE_MONTHS = 12
"""Months simulated past the window's end, only for the ground truth (realised capacity)."""

KINDS = ("enterprise", "individual_business", "cooperative")
SECTIONS = tuple(v.code for v in schemas.INDUSTRY_SECTIONS)
DISTRICTS = tuple(P.DISTRICT_SHARES)

SALES_SEASON = {
    "A": (0.3, 0.1, -0.2, -0.3, -0.3, -0.2, -0.2, -0.1, 0.0, 0.3, 0.4, 0.4),  # citrus harvest
    "H": (0.0, 0.15, -0.1, 0.0, 0.1, 0.05, 0.2, 0.25, 0.0, 0.2, -0.1, -0.05),  # tourism
    "F": (0.15, 0.1, -0.1, -0.05, 0.0, -0.05, -0.05, -0.05, 0.0, 0.05, 0.05, 0.15),
    "E": (-0.1, -0.4, 0.0, 0.05, 0.1, 0.05, 0.0, 0.0, 0.05, 0.05, 0.1, 0.15),
    "default": (0.05, -0.15, 0.0, 0.0, 0.0, 0.0, 0.0, 0.0, 0.0, 0.0, 0.0, 0.1),
}
ELECTRICITY_SEASON = (0.15, 0.10, 0.0, -0.05, 0.0, 0.1, 0.25, 0.25, 0.1, -0.05, 0.0, 0.1)
WATER_SEASON = (-0.1, -0.1, 0.0, 0.0, 0.05, 0.1, 0.2, 0.2, 0.1, 0.0, -0.05, -0.1)
GAS_SEASON = (0.5, 0.4, 0.2, 0.0, -0.2, -0.3, -0.35, -0.35, -0.2, 0.0, 0.2, 0.4)


def sigmoid(z: np.ndarray) -> np.ndarray:
    """The logistic function."""
    return 1.0 / (1.0 + np.exp(-z))


def by_section(table: dict, sections: np.ndarray) -> np.ndarray:
    """Look a per-section parameter up for every entity, falling back to ``table['default']``."""
    lookup = np.array([table.get(s, table["default"]) for s in SECTIONS])
    return lookup[np.searchsorted(SECTIONS, sections)]


def _season_matrix(table: dict | tuple, sections: np.ndarray, calendar_months: np.ndarray) -> np.ndarray:
    """Log-scale seasonal effect, shape (entities, months)."""
    if isinstance(table, tuple):
        return np.broadcast_to(np.array(table)[calendar_months], (len(sections), len(calendar_months)))
    rows = np.array([table.get(s, table["default"]) for s in SECTIONS])
    return rows[np.searchsorted(SECTIONS, sections)][:, calendar_months]


def _industry_probabilities() -> np.ndarray:
    """P(section | kind, district), shape (kinds, districts, sections)."""
    out = np.zeros((len(KINDS), len(DISTRICTS), len(SECTIONS)))
    for k, kind in enumerate(KINDS):
        mix = dict(P.INDUSTRY_MIX[kind])
        other = mix.pop("other")
        base = np.zeros(len(SECTIONS))
        for s, share in mix.items():
            base[SECTIONS.index(s)] += share
        for s, share in P.OTHER_SPLIT.items():
            base[SECTIONS.index(s)] += other * share / sum(P.OTHER_SPLIT.values())
        for d, district in enumerate(DISTRICTS):
            tilted = base.copy()
            for s, factor in P.DISTRICT_INDUSTRY_TILT.get(district, {}).items():
                tilted[SECTIONS.index(s)] *= factor
            out[k, d] = tilted / tilted.sum()
    return out


INDUSTRY_PROBABILITIES = _industry_probabilities()


def choose(rng: np.random.Generator, probabilities: np.ndarray) -> np.ndarray:
    """One categorical draw per row of ``probabilities`` (rows sum to 1)."""
    cumulative = probabilities.cumsum(axis=-1)
    u = rng.random(cumulative.shape[:-1])[..., None]
    return np.minimum((u > cumulative).sum(axis=-1), probabilities.shape[-1] - 1)


@dataclass(frozen=True)
class Calendar:
    """The window: ``months`` monthly steps ending with ``end`` (datetime64[M]), plus the future."""

    end: np.datetime64
    months: int

    @property
    def start(self) -> np.datetime64:
        return self.end - (self.months - 1)

    @property
    def steps(self) -> np.ndarray:
        """Every simulated month, window first then the future, as datetime64[M]."""
        return self.start + np.arange(self.months + FUTURE_MONTHS)

    @property
    def end_date(self) -> np.datetime64:
        """The last day of the window: nothing is reported after it."""
        return (self.end + 1).astype("datetime64[D]") - 1

    def month_start(self, step: np.ndarray) -> np.ndarray:
        """First day of window month ``step`` (0 = first month of the window)."""
        return (self.start + step).astype("datetime64[D]")


def _bodies(index: np.ndarray, seed: int, new_style: np.ndarray) -> np.ndarray:
    """Distinct organisation-code bodies (values 0-30) for global entity indexes.

    Entities registered since the 2015 reform get ``MA`` + six characters, older ones an
    all-digit body, both from bijections of the index, so no two entities share a code.
    """
    body = np.zeros((len(index), 8), dtype=np.int64)
    space6, space8 = 31 ** 6, 10 ** 8
    new_values = (index * 5_882_353 + seed * 7_919 + 11) % space6  # 5,882,353 is coprime with 31
    old_values = (index * 7_654_321 + seed * 104_729 + 3) % space8  # 7,654,321 is coprime with 10
    body[:, 0], body[:, 1] = uscc.CHARSET.index("M"), uscc.CHARSET.index("A")
    for pos in range(7, 1, -1):
        body[:, pos] = new_values % 31
        new_values //= 31
    old = np.zeros_like(body)
    for pos in range(7, -1, -1):
        old[:, pos] = old_values % 10
        old_values //= 10
    return np.where(new_style[:, None], body, old)


def foreign_codes(rng: np.random.Generator, n: int) -> np.ndarray:
    """Valid codes that belong to no entity of the city (``MB`` bodies are never issued here)."""
    body = rng.integers(0, 31, size=(n, 8))
    body[:, 0], body[:, 1] = uscc.CHARSET.index("M"), uscc.CHARSET.index("B")
    districts = np.array(DISTRICTS)[rng.integers(0, len(DISTRICTS), n)]
    return uscc.make_codes("9", np.array(["1"] * n), districts, body)


@lru_cache(maxsize=1)
def grade_cuts() -> tuple[float, ...]:
    """Thresholds on the standardised grade score giving the target D, C, B, A shares."""
    shares = P.TAX_GRADE_SHARES
    rated = shares["A"] + shares["B"] + shares["C"] + shares["D"]
    cumulative = np.cumsum([shares["D"], shares["C"], shares["B"]]) / rated
    return tuple(NormalDist().inv_cdf(q) for q in cumulative)


@dataclass
class Population:
    """One chunk of the city: firmographics, hidden health, loans. Arrays are per entity
    (length n) or per entity and month (n × steps)."""

    calendar: Calendar
    index: np.ndarray
    codes: np.ndarray
    kind: np.ndarray
    district: np.ndarray
    section: np.ndarray
    chemical: np.ndarray
    established: np.ndarray  # datetime64[D]
    exit_step: np.ndarray  # first month no longer alive; >= steps when it survives
    deregistered: np.ndarray  # datetime64[D]; NaT when not deregistered by the window's end
    dormant: np.ndarray
    fixed_quota: np.ndarray
    capital_wan: np.ndarray
    log_size: np.ndarray
    quality: np.ndarray
    owner: np.ndarray
    health: np.ndarray  # n × steps
    alive: np.ndarray  # n × steps, bool
    sales: np.ndarray  # n × steps, yuan
    activity: np.ndarray  # n × steps, log of the sales level without the month's noise
    loans: dict

    @property
    def n(self) -> int:
        return len(self.index)

    @property
    def last_day(self) -> np.ndarray:
        """The last day anything can happen to an entity: the day before deregistration, or the
        window's last day."""
        before = self.deregistered - np.timedelta64(1, "D")
        return np.where(np.isnat(self.deregistered), self.calendar.end_date, before)

    @property
    def tax_filer(self) -> np.ndarray:
        """Who files monthly VAT returns: not fixed-quota or dormant individual businesses."""
        return ~self.fixed_quota & ~self.dormant

    def age_years(self, step: np.ndarray | int) -> np.ndarray:
        """Age in years at the start of window month ``step``."""
        return (self.calendar.month_start(np.asarray(step)) - self.established).astype(float) / 365.25


def build_population(chunk: int, index: np.ndarray, calendar: Calendar, seed: int,
                     loan_rate: float = 1.0) -> Population:
    """Draw one chunk of entities, their monthly health, exits and loans."""
    rng = np.random.default_rng([seed, chunk])
    n, steps = len(index), calendar.months + FUTURE_MONTHS
    h_params = P.HEALTH

    kind_i = choose(rng, np.broadcast_to(np.array([P.ENTITY_MIX[k] for k in KINDS]), (n, 3)))
    kind = np.array(KINDS)[kind_i]
    district_p = np.array([P.DISTRICT_SHARES[d] for d in DISTRICTS], dtype=float)
    district_i = choose(rng, np.broadcast_to(district_p / district_p.sum(), (n, len(DISTRICTS))))
    district = np.array(DISTRICTS)[district_i]
    section = np.array(SECTIONS)[choose(rng, INDUSTRY_PROBABILITIES[kind_i, district_i])]
    chemical = (section == "C") & (rng.random(n) < P.CHEMICAL_SHARE_OF_MANUFACTURING)

    mean_age = np.array([P.AGE_MEAN_YEARS[k] for k in kind])
    age_at_end_days = (rng.exponential(mean_age) * 365.25).astype("int64") + 1
    established = calendar.end_date - age_at_end_days.astype("timedelta64[D]")
    new_style = established >= np.datetime64("2015-10-01")
    codes = uscc.make_codes("9", np.array([P.USCC_TYPE[k] for k in kind]), district,
                            _bodies(index, seed, new_style))

    individual = kind == "individual_business"
    dormant = individual & (rng.random(n) < P.INDIVIDUAL_DORMANT)
    fixed_quota = individual & ~dormant & (rng.random(n) < P.INDIVIDUAL_FIXED_QUOTA)
    capital_median = np.select([kind == "enterprise", individual], [100.0, 5.0], 50.0)
    capital_wan = np.round(capital_median * np.exp(rng.normal(0, 1.1, n)), 2).clip(0.01)

    quality = rng.normal(0, 1, n)
    owner = rng.normal(0, 1, n)
    log_size = (np.log([P.SALES_MEDIAN[k] for k in kind]) + rng.normal(0, 1, n) *
                np.array([P.SALES_LOG_SD[k] for k in kind]) + 0.15 * quality)

    # Hidden health: AR(1) around quality, with rare negative shocks.
    x = np.empty((n, steps))
    stationary_sd = h_params.sigma / np.sqrt(1 - h_params.rho ** 2)
    previous = rng.normal(0, stationary_sd, n)
    shocks = (rng.random((n, steps)) < h_params.shock_probability) * rng.uniform(*h_params.shock_size, (n, steps))
    innovations = rng.normal(0, h_params.sigma, (n, steps))
    for t in range(steps):
        previous = h_params.rho * previous + innovations[:, t] - shocks[:, t]
        x[:, t] = previous
    health = quality[:, None] + x

    # alive from the month of establishment (0 for entities older than the window)
    start_step = (established.astype("datetime64[M]") - calendar.start).astype(int).clip(0)
    exit_step = _exit_steps(rng, calendar, established, kind, health, start_step)

    loans = _loans(rng, calendar, index, kind, dormant, established, log_size, owner,
                   health, start_step, exit_step, loan_rate)

    # A default drags health down after it; the firm may not survive it.
    for entity, step in zip(loans["entity"][loans["defaulted"]], loans["default_step"][loans["defaulted"]]):
        after = np.arange(step + 1, steps)
        health[entity, after] -= 1.8 * 0.93 ** (after - step)
        if rng.random() < 0.35:
            exit_step[entity] = min(exit_step[entity], step + int(rng.integers(3, 13)))

    months_idx = np.arange(steps)
    alive = (months_idx[None, :] >= start_step[:, None]) & (months_idx[None, :] < exit_step[:, None])
    trend = h_params.growth_per_quality * quality[:, None] * months_idx[None, :]
    calendar_months = (calendar.steps.astype(int) % 12)
    activity = (log_size[:, None] + h_params.sales_loading * (health - quality[:, None]) + trend
                + _season_matrix(SALES_SEASON, section, calendar_months))
    sales = np.where(alive & ~dormant[:, None], np.exp(activity + rng.normal(0, 0.08, (n, steps))), 0.0)
    # deregistered 20-45 days into the first month no longer alive, once the last return is filed
    deregistered = calendar.month_start(exit_step) + rng.integers(20, 46, n) * np.timedelta64(1, "D")
    deregistered = np.where((exit_step < calendar.months) & (deregistered <= calendar.end_date), deregistered,
                            np.datetime64("NaT", "D"))
    return Population(calendar, index, codes, kind, district, section, chemical, established, exit_step,
                      deregistered, dormant, fixed_quota, capital_wan, log_size, quality, owner, health, alive,
                      np.round(sales, 2), activity, loans)


def _exit_steps(rng, calendar: Calendar, established, kind, health, start_step) -> np.ndarray:
    """First month each entity is no longer alive (deregistered), from the age hazard and health."""
    n, steps = health.shape
    month_starts = calendar.month_start(np.arange(steps))
    age_years = ((month_starts[None, :] - established[:, None]).astype(float) / 365.25).clip(0)
    hazard_table = np.array(P.EXIT_HAZARD_BY_AGE)
    annual = hazard_table[np.minimum(age_years.astype(int), len(hazard_table) - 1)]
    annual = annual * np.where(kind == "individual_business", P.INDIVIDUAL_EXIT_MULTIPLIER, 1.0)[:, None]
    monthly = annual / 12 * np.exp(-0.6 * (health - 0.0)).clip(0.2, 6.0)
    exits = (rng.random((n, steps)) < monthly) & (np.arange(steps)[None, :] >= start_step[:, None] + 1)
    return np.where(exits.any(axis=1), exits.argmax(axis=1), steps + 1)


def _loans(rng, calendar: Calendar, index, kind, dormant, established, log_size, owner, health,
           start_step, exit_step, loan_rate) -> dict:
    """Loans granted inside the window, with their true PD and realised default."""
    h_params = P.HEALTH
    n, steps = health.shape
    window = calendar.months
    rate = np.array([P.LOANS_PER_YEAR[k] for k in kind]) / 12 * loan_rate
    step_idx = np.arange(window)
    month_starts = calendar.month_start(step_idx)
    age_months = (month_starts[None, :] - established[:, None]).astype(float) / 30.44
    eligible = ((step_idx[None, :] >= start_step[:, None]) & (step_idx[None, :] < exit_step[:, None] - 1)
                & (age_months >= 6) & ~dormant[:, None])
    probability = rate[:, None] * np.exp(0.35 * health[:, :window])
    granted = eligible & (rng.random((n, window)) < probability)
    entity, step = np.nonzero(granted)
    m = len(entity)
    median = np.array([P.SALES_MEDIAN[k] for k in kind])
    amount = P.LOAN_MEDIAN * np.exp(0.5 * (log_size[entity] - np.log(median[entity])) + rng.normal(0, P.LOAN_LOG_SD, m))
    amount = (np.round(amount.clip(P.LOAN_MIN, P.LOAN_MAX) / 1000) * 1000).astype(np.int64)
    terms = np.array(list(P.LOAN_TERMS))
    term = terms[choose(rng, np.broadcast_to(np.array(list(P.LOAN_TERMS.values())), (m, len(terms))))]
    young = (age_months[entity, step] < 24).astype(float)
    annual_sales = 12 * np.exp(log_size[entity])
    leverage = np.log(amount / annual_sales)
    logit = (h_params.pd_intercept + h_params.pd_health * health[entity, step]
             + h_params.pd_owner * owner[entity] + h_params.pd_young * young + h_params.pd_leverage * leverage)
    true_pd = sigmoid(logit)
    defaulted = rng.random(m) < true_pd
    # 90 days past due 3-11 whole months after grant (plus days within the month): within 12 months,
    # and no later than the entity's last month
    default_step = np.minimum(step + rng.integers(3, 12, m), exit_step[entity] - 1)
    # Banks stop lending to an entity once it has defaulted.
    order = np.lexsort((step, entity))
    entity, step, amount, term, true_pd, defaulted, default_step = (
        a[order] for a in (entity, step, amount, term, true_pd, defaulted, default_step))
    first_default = np.full(n, np.iinfo(np.int64).max)
    np.minimum.at(first_default, entity[defaulted], default_step[defaulted])
    keep = step < first_default[entity]
    day = rng.integers(0, 28, m)
    bank = choose(rng, np.broadcast_to(np.array(P.BANK_SHARES) / sum(P.BANK_SHARES), (m, len(P.BANKS))))
    out = {"entity": entity, "step": step, "day": day, "amount": amount, "term": term, "true_pd": true_pd,
           "defaulted": defaulted, "default_step": default_step, "bank": bank}
    return {k: v[keep] for k, v in out.items()}
