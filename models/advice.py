"""Counterfactual advice: the fewest lawful actions that reach the best decision within reach,
re-scored by the model.

For every enterprise graded below A or not approved, :func:`advise` tries the actions of
:data:`features.registry.ACTIONS` its record allows (paying arrears, performing court cases and
lifting a dishonest listing, repairing penalties past their publicity period, a year of filing and
paying on time, and letting the platform hold a department's records a thin file lacks), alone,
then in pairs and so on, each set applied to the enterprise's profile as the registry declares and
scored by the bundle itself (PD, grade, knock-outs, limit: the whole decision). Advice aims at what
blocks the decision: the best decision within reach first (a knock-out lifted, a decline turned
into a referral, a referral into an approval), then the fewest actions, then the lowest PD; a set
that only improves the grade counts where the decision cannot improve. A result that is still a
decline is never advice: :func:`advise_all` says "nothing within reach" and why (the knock-out or
the grade that stands). Nothing is advised that the record does not show or the law does not
allow; data the enterprise lets the platform hold is re-scored at the values of the typical
approved borrower of its kind, and the advice says so. A file thin on a department's records is
also told, whatever the advice, what letting the platform hold them would let it judge
(:attr:`Counsel.data`), even where that is still a decline.
"""

from __future__ import annotations

import itertools
import operator
from dataclasses import dataclass, field

import numpy as np
import pandas as pd

from features.registry import ACTIONS, COVERAGE_FLAG, Action
from models.bundle import Decisions, ModelBundle
from models.policy import GRADES

OPERATORS = {">": operator.gt, ">=": operator.ge, "==": operator.eq, "<": operator.lt, "<=": operator.le}


@dataclass
class Advice:
    """One enterprise's advice: the actions and what the re-scored decision would be."""

    uscc: str
    actions: list[Action]
    amounts: list[float | None]
    pd: float
    grade: str
    decision: str
    limit_yuan: int
    from_grade: str
    from_decision: str
    lifted: list[str] = field(default_factory=list)
    """The knock-outs the actions lift."""

    @property
    def codes(self) -> str:
        return ";".join(a.code for a in self.actions)

    @property
    def supplied(self) -> list[str]:
        """The sources the advice lets the platform hold (its figures assume typical records)."""
        return [a.supplies for a in self.actions if a.supplies]

    def _steps(self, language: str) -> list[str]:
        return [getattr(a, language).format(amount="" if m is None else f"¥{m:,.0f}").replace("  ", " ").strip()
                for a, m in zip(self.actions, self.amounts)]

    @property
    def zh(self) -> str:
        outcome = f"评级升至{self.grade}" if self.grade != self.from_grade else f"评级保持{self.grade}"
        if self.decision != self.from_decision:
            outcome += f"，决策改为{_DECISION_ZH[self.decision]}"
        if self.lifted:
            outcome = f"解除否决规则{'、'.join(self.lifted)}，" + outcome
        if self.supplied:
            outcome = "若调取的记录与同类获批企业的中位水平相当，" + outcome
        return "；".join(self._steps("zh")) + f" → {outcome}，额度 ¥{self.limit_yuan:,}"

    @property
    def en(self) -> str:
        outcome = f"grade {self.grade}" + (f", {self.decision}" if self.decision != self.from_decision else "")
        if self.lifted:
            outcome = f"knock-out {', '.join(self.lifted)} lifted, " + outcome
        if self.supplied:
            outcome = "if those records match the typical approved borrower of its kind, " + outcome
        return "; ".join(self._steps("en")) + f" → {outcome}, limit ¥{self.limit_yuan:,}"

    def as_json(self) -> dict:
        return {"actions": [{"code": a.code, "horizon": a.horizon, "amount_yuan": m, "legal_basis": a.legal_basis or None,
                             "changes": ({f: v for f, v in a.sets} | {f: "minus one" for f in a.lowers}
                                         | ({COVERAGE_FLAG[a.supplies]: 1.0} if a.supplies else {}))}
                            for a, m in zip(self.actions, self.amounts)],
                "zh": self.zh, "en": self.en, "pd": round(self.pd, 6), "grade": self.grade,
                "decision": self.decision, "limit_yuan": self.limit_yuan}


@dataclass
class Counsel:
    """What advice says about one enterprise: the :class:`Advice`, or None and why (in words);
    and, for a file thin on a department's records, ``data``: what the platform could judge were
    the enterprise to let it hold them (the sharing alone, re-scored at typical records). ``data``
    is a statement, not advice: its result may still be a decline, and it is then said as the
    grade the platform would give, beside "nothing within reach"."""

    advice: Advice | None
    why_zh: str | None = None
    why_en: str | None = None
    data: Advice | None = None

    @property
    def data_zh(self) -> str | None:
        """The data statement in Chinese (None when there is none)."""
        if self.data is None:
            return None
        shared = "、".join(_SOURCE_ZH.get(s, s) for s in self.data.supplied)
        return (f"若允许平台调取{shared}记录，平台即可据此评估：按同类获批企业的中位水平，评级为{self.data.grade}，"
                f"决策为{_DECISION_ZH[self.data.decision]}，额度 ¥{self.data.limit_yuan:,}")

    @property
    def data_en(self) -> str | None:
        """The data statement in English (None when there is none)."""
        if self.data is None:
            return None
        shared = " and ".join(_SOURCE_EN.get(s, s) for s in self.data.supplied)
        return (f"were the platform to hold the {shared} records, it could judge them: at the typical approved "
                f"borrower's records of its kind, grade {self.data.grade}, {self.data.decision}, "
                f"limit ¥{self.data.limit_yuan:,}")


_DECISION_ZH = {"approve": "批准", "refer": "转人工审查", "decline": "拒绝"}
_SOURCE_ZH = {"tax_filings": "税务", "electricity": "用电"}
_SOURCE_EN = {"tax_filings": "tax bureau's", "electricity": "power company's"}
SEVERITY = {"approve": 0, "refer": 1, "decline": 2}


def applicable(action: Action, profile: pd.DataFrame) -> np.ndarray:
    """Which rows' records show what ``action`` fixes."""
    ok = np.ones(len(profile), dtype=bool)
    for feature, op, threshold in action.when:
        values = pd.to_numeric(profile[feature], errors="coerce").to_numpy(dtype=float)
        ok &= OPERATORS[op](values, threshold)  # a missing value (NaN) compares False: nothing shown to fix
    return ok


def apply(actions: list[Action], profile: pd.DataFrame, bundle: ModelBundle | None = None) -> pd.DataFrame:
    """The profile rows as they would stand after every action (each where the record as it is
    now allows it). An action that lets the platform hold a source needs the ``bundle`` whose
    references fill that source's features."""
    after = profile.copy()
    for action in actions:
        _change(after, action, applicable(action, profile), bundle)
    return after


def supplied_values(bundle: ModelBundle, source: str, profile: pd.DataFrame, rows: np.ndarray) -> dict[str, list]:
    """Feature → per chosen row, the value it would take were the platform to hold ``source``: the
    typical approved borrower of the row's kind that the platform holds the source for
    (:func:`models.bundle.reference_for`'s ``supplied``), for every feature the source feeds. Rows
    of a kind with too few such borrowers take every kind's."""
    supplied = ((bundle.reference or {}).get("supplied") or {}).get(source)
    if not supplied:
        raise ValueError(f"model {bundle.version} holds no typical record of {source}: its advice cannot re-score "
                         "letting the platform hold it (retrain with xyd train)")
    kinds = profile["entity_type"].astype("object").to_numpy()[rows] if "entity_type" in profile else \
        np.full(len(rows), "*", dtype=object)
    references = [(supplied.get(kind) or supplied["*"])["values"] for kind in kinds]
    names = dict.fromkeys(name for reference in references for name in reference)  # a kind may lack a figure
    return {name: [reference.get(name) for reference in references] for name in names}


def _change(frame: pd.DataFrame, action: Action, rows: np.ndarray, bundle: ModelBundle | None = None) -> None:
    for feature, value in action.sets:
        frame.loc[rows, feature] = np.nan if value is None else value
    for feature in action.lowers:
        frame.loc[rows, feature] = (pd.to_numeric(frame.loc[rows, feature]) - 1).clip(lower=0)
    if action.supplies and rows.any():
        chosen = np.flatnonzero(rows)
        supplied = supplied_values(bundle, action.supplies, frame, chosen)
        numeric = [f for f in supplied if pd.api.types.is_numeric_dtype(frame[f])]
        if numeric:  # one assignment for the source's numbers: a missing figure takes the typical holder's
            block = frame.loc[rows, numeric]
            typical = pd.DataFrame({f: np.array([np.nan if v is None else v for v in supplied[f]], dtype=float)
                                    for f in numeric}, index=block.index)
            frame.loc[rows, numeric] = block.where(block.notna(), typical)
        for feature in (f for f in supplied if f not in numeric):
            now = frame[feature].iloc[chosen]
            filled = [old if not pd.isna(old) else (np.nan if new is None else new) for old, new in zip(now, supplied[feature])]
            frame.loc[rows, feature] = pd.Series(filled, index=frame.index[chosen], dtype=frame[feature].dtype)
        flag = COVERAGE_FLAG[action.supplies]
        if flag in frame:
            frame.loc[rows, flag] = 1.0
        if "sources_covered" in frame:
            frame.loc[rows, "sources_covered"] = pd.to_numeric(frame.loc[rows, "sources_covered"]) + 1


def _rank(grades: np.ndarray) -> np.ndarray:
    return np.array([GRADES.index(g) for g in grades])


def _severity(decisions: np.ndarray) -> np.ndarray:
    return np.array([SEVERITY[d] for d in decisions])


def advise(bundle: ModelBundle, profile: pd.DataFrame, requested_yuan: np.ndarray | None = None,
           max_actions: int = len(ACTIONS), num_threads: int | None = None,
           decided: Decisions | None = None, disputed: list[set[str]] | None = None) -> list[Advice | None]:
    """Per row of ``profile``: the :class:`Advice` for it, or None (see :func:`advise_all`, which
    also says why)."""
    return [c.advice for c in advise_all(bundle, profile, requested_yuan, max_actions, num_threads, decided, disputed)]


def advise_all(bundle: ModelBundle, profile: pd.DataFrame, requested_yuan: np.ndarray | None = None,
               max_actions: int = len(ACTIONS), num_threads: int | None = None,
               decided: Decisions | None = None, disputed: list[set[str]] | None = None) -> list[Counsel]:
    """Per row of ``profile``: its :class:`Counsel`: the advice, or why there is none (graded A
    and approved; nothing the record allows; or nothing within reach, naming the knock-out or the
    grade that still declines). ``requested_yuan`` (per row, NaN for none) caps the promised limits
    as it capped the decisions. ``num_threads`` for the boosters: by default one for a handful of
    rows (a thread pool costs more than it saves there). ``decided``: the profile's decisions when
    the caller has made them already (same rows, same requested amounts), so that they are not made
    twice. ``disputed``: per row, the knock-out features resting only on records under objection,
    as the decisions were made with them."""
    profile = profile.reset_index(drop=True)
    if num_threads is None:
        num_threads = 1 if len(profile) < 100 else 0
    requested = None if requested_yuan is None else np.asarray(requested_yuan, dtype=float)
    now = decided if decided is not None else bundle.decide(profile, requested, explain=False, num_threads=num_threads,
                                                            disputed=disputed)
    holds = ((bundle.reference or {}).get("supplied") or {})
    actions = [a for a in ACTIONS if not a.supplies or (a.supplies in holds and all(c in profile for c, _, _ in a.when))]
    by_code = {a.code: a for a in actions}
    allowed = np.column_stack([applicable(a, profile) for a in actions]) if len(profile) else \
        np.zeros((0, len(actions)), dtype=bool)
    wanting = (now.grade != GRADES[0]) | (now.decision != "approve")
    # every (row, set of its allowed actions) up to max_actions, the needed ones added
    owners, chosen_sets = [], []
    sharing: dict[int, int] = {}  # row → its set that only lets the platform hold what it lacks
    statement_only: set[int] = set()
    for i in np.flatnonzero(wanting & allowed.any(axis=1)):
        mine = [actions[k] for k in np.flatnonzero(allowed[i])]
        lacking = frozenset(a.code for a in mine if a.supplies)
        seen = set()
        for size in range(1, min(len(mine), max_actions) + 1):
            for combination in itertools.combinations(mine, size):
                codes = {a.code for a in combination}
                codes |= {n for a in combination for n in a.needs if n in by_code and allowed[i, actions.index(by_code[n])]}
                key = frozenset(codes)
                if key in seen:
                    continue
                seen.add(key)
                if key == lacking:
                    sharing[int(i)] = len(owners)
                owners.append(i)
                chosen_sets.append([a for a in actions if a.code in codes])
        if lacking and lacking not in seen:  # the data statement covers every source lacking, past max_actions
            sharing[int(i)] = len(owners)
            statement_only.add(len(owners))  # never advice: it holds more actions than were asked for
            owners.append(i)
            chosen_sets.append([a for a in actions if a.code in lacking])
    out = [Counsel(None, "评级A且已批准，无需改进", "grade A and approved: nothing to improve") if not wanting[i] else
           Counsel(None, "记录中没有企业可依法采取、能改变本决策的行动",
                   "the record shows nothing the enterprise can lawfully do that bears on this decision")
           for i in range(len(profile))]
    if not owners:
        return out
    owners = np.asarray(owners)
    trial = profile.iloc[owners].reset_index(drop=True)
    membership = np.array([[a in chosen for a in actions] for chosen in chosen_sets])
    for k, action in enumerate(actions):  # every member was allowed on the row as it is now
        if membership[:, k].any():
            _change(trial, action, membership[:, k], bundle)
    scored = bundle.decide(trial, None if requested is None else requested[owners], explain=False,
                           num_threads=num_threads, disputed=None if disputed is None else [disputed[i] for i in owners])
    severity_now, severity = _severity(now.decision[owners]), _severity(scored.decision)
    better = (severity < severity_now) | (_rank(scored.grade) < _rank(now.grade[owners]))
    reached = better & (scored.decision != "decline")  # a decline at ¥0 is not advice
    sizes = membership.sum(axis=1)
    best: dict[int, int] = {}
    closest: dict[int, int] = {}
    for j in range(len(owners)):
        if j in statement_only:
            continue
        i = int(owners[j])
        key = (severity[j], sizes[j], scored.pd[j])
        if reached[j] and (i not in best or key < (severity[best[i]], sizes[best[i]], scored.pd[best[i]])):
            best[i] = j
        if i not in closest or (severity[j], scored.pd[j]) < (severity[closest[i]], scored.pd[closest[i]]):
            closest[i] = j
    def advice_of(i: int, j: int) -> Advice:
        chosen = chosen_sets[j]
        amounts = [None if a.amount is None else float(profile.at[i, a.amount]) for a in chosen]
        lifted = sorted({k.code for k in now.knockouts[i]} - {k.code for k in scored.knockouts[j]})
        return Advice(str(profile.at[i, "uscc"]) if "uscc" in profile else str(i), chosen, amounts,
                      float(scored.pd[j]), str(scored.grade[j]), str(scored.decision[j]), int(scored.limit[j]),
                      str(now.grade[i]), str(now.decision[i]), lifted)

    for i, j in best.items():
        out[i] = Counsel(advice_of(i, j))
    for i, j in closest.items():
        if i not in best:
            out[i] = Counsel(None, *_out_of_reach(chosen_sets[j], scored.grade[j], scored.decision[j], scored.knockouts[j]))
    for i, j in sharing.items():  # a thin file is told what its records would let the platform judge
        out[i].data = advice_of(i, j)
    return out


def _out_of_reach(tried: list[Action], grade: str, decision: str, knockouts: list) -> tuple[str, str]:
    """Why nothing within reach improves a decision, from the best attempt: what still blocks it."""
    def words(action: Action, language: str) -> str:
        return getattr(action, language).format(amount="").replace("  ", " ").strip()
    steps_zh = "、".join(f"{a.code}（{words(a, 'zh')}）" for a in tried)
    steps_en = "; ".join(f"{a.code} ({words(a, 'en')})" for a in tried)
    standing = [k for k in knockouts if k.decision == decision]
    if standing:
        rule = standing[0]
        return (f"无可及的改进：即使采取 {steps_zh}，否决规则 {rule.code}（{rule.zh}）仍然成立",
                f"nothing within reach: even after {steps_en}, knock-out {rule.code} ({rule.en}) still stands")
    return (f"无可及的改进：即使采取 {steps_zh}，评级仍为{grade}，决策仍为{_DECISION_ZH[decision]}",
            f"nothing within reach: even after {steps_en}, the grade stays {grade} and the decision {decision}")
