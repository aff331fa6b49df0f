"""Counterfactual advice: the fewest lawful actions that move a decision up, re-scored by the model.

For every enterprise graded below A or not approved, :func:`advise` tries the actions of
:data:`features.registry.ACTIONS` its record allows (paying arrears, performing court cases,
repairing penalties past their publicity period, a year of filing and paying on time), alone,
then in pairs and so on, each set applied to the enterprise's profile as the registry declares
and scored by the bundle itself (PD, grade, knock-outs, limit: the whole decision). The advice is
the smallest set that improves the grade or turns the decision into an approval, the lowest PD
among sets of that size; it states what the enterprise would then get. Nothing is advised that
the record does not show (no arrears, no advice to pay them) or that the law does not allow.
"""

from __future__ import annotations

import itertools
import operator
from dataclasses import dataclass

import numpy as np
import pandas as pd

from features.registry import ACTIONS, Action
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

    @property
    def codes(self) -> str:
        return ";".join(a.code for a in self.actions)

    def _steps(self, language: str) -> list[str]:
        return [getattr(a, language).format(amount="" if m is None else f"¥{m:,.0f}").replace("  ", " ").strip()
                for a, m in zip(self.actions, self.amounts)]

    @property
    def zh(self) -> str:
        outcome = f"评级升至{self.grade}" if self.grade != self.from_grade else f"评级保持{self.grade}"
        if self.decision != self.from_decision:
            outcome += f"，决策改为{_DECISION_ZH[self.decision]}"
        return "；".join(self._steps("zh")) + f" → {outcome}，额度 ¥{self.limit_yuan:,}"

    @property
    def en(self) -> str:
        outcome = f"grade {self.grade}" + (f", {self.decision}" if self.decision != self.from_decision else "")
        return "; ".join(self._steps("en")) + f" → {outcome}, limit ¥{self.limit_yuan:,}"

    def as_json(self) -> dict:
        return {"actions": [{"code": a.code, "horizon": a.horizon, "amount_yuan": m, "legal_basis": a.legal_basis or None,
                             "changes": {f: v for f, v in a.sets} | {f: "minus one" for f in a.lowers}}
                            for a, m in zip(self.actions, self.amounts)],
                "zh": self.zh, "en": self.en, "pd": round(self.pd, 6), "grade": self.grade,
                "decision": self.decision, "limit_yuan": self.limit_yuan}


_DECISION_ZH = {"approve": "批准", "refer": "转人工审查", "decline": "拒绝"}


def applicable(action: Action, profile: pd.DataFrame) -> np.ndarray:
    """Which rows' records show what ``action`` fixes."""
    ok = np.ones(len(profile), dtype=bool)
    for feature, op, threshold in action.when:
        values = pd.to_numeric(profile[feature], errors="coerce").to_numpy(dtype=float)
        ok &= np.nan_to_num(OPERATORS[op](values, threshold), nan=0).astype(bool)
    return ok


def apply(actions: list[Action], profile: pd.DataFrame) -> pd.DataFrame:
    """The profile rows as they would stand after every action (each where the record as it is
    now allows it)."""
    after = profile.copy()
    for action in actions:
        _change(after, action, applicable(action, profile))
    return after


def _change(frame: pd.DataFrame, action: Action, rows: np.ndarray) -> None:
    for feature, value in action.sets:
        frame.loc[rows, feature] = np.nan if value is None else value
    for feature in action.lowers:
        frame.loc[rows, feature] = (pd.to_numeric(frame.loc[rows, feature]) - 1).clip(lower=0)


def _goal(from_grade: np.ndarray, from_decision: np.ndarray, grade: np.ndarray, decision: np.ndarray) -> np.ndarray:
    rank = {g: i for i, g in enumerate(GRADES)}
    better_grade = np.vectorize(rank.get)(grade) < np.vectorize(rank.get)(from_grade)
    approved_now = (decision == "approve") & (from_decision != "approve")
    return better_grade | approved_now


def advise(bundle: ModelBundle, profile: pd.DataFrame, requested_yuan: np.ndarray | None = None,
           max_actions: int = len(ACTIONS), num_threads: int | None = None,
           decided: Decisions | None = None, disputed: list[set[str]] | None = None) -> list[Advice | None]:
    """Per row of ``profile``: the :class:`Advice` for it, or None (graded A and approved, or no
    lawful set of actions its record allows improves its decision). ``requested_yuan`` (per row,
    NaN for none) caps the promised limits as it capped the decisions. ``num_threads`` for the
    boosters: by default one for a handful of rows (a thread pool costs more than it saves there).
    ``decided``: the profile's decisions when the caller has made them already (same rows, same
    requested amounts), so that they are not made twice. ``disputed``: per row, the knock-out
    features resting only on records under objection, as the decisions were made with them."""
    profile = profile.reset_index(drop=True)
    if num_threads is None:
        num_threads = 1 if len(profile) < 100 else 0
    requested = None if requested_yuan is None else np.asarray(requested_yuan, dtype=float)
    now = decided if decided is not None else bundle.decide(profile, requested, explain=False, num_threads=num_threads,
                                                            disputed=disputed)
    by_code = {a.code: a for a in ACTIONS}
    allowed = np.column_stack([applicable(a, profile) for a in ACTIONS]) if len(profile) else \
        np.zeros((0, len(ACTIONS)), dtype=bool)
    wanting = (now.grade != GRADES[0]) | (now.decision != "approve")
    # every (row, set of its allowed actions) up to max_actions, the needed ones added
    owners, chosen_sets = [], []
    for i in np.flatnonzero(wanting & allowed.any(axis=1)):
        mine = [ACTIONS[k] for k in np.flatnonzero(allowed[i])]
        seen = set()
        for size in range(1, min(len(mine), max_actions) + 1):
            for combination in itertools.combinations(mine, size):
                codes = {a.code for a in combination}
                codes |= {n for a in combination for n in a.needs if allowed[i, ACTIONS.index(by_code[n])]}
                key = frozenset(codes)
                if key in seen:
                    continue
                seen.add(key)
                owners.append(i)
                chosen_sets.append([a for a in ACTIONS if a.code in codes])
    out: list[Advice | None] = [None] * len(profile)
    if not owners:
        return out
    owners = np.asarray(owners)
    trial = profile.iloc[owners].reset_index(drop=True)
    membership = np.array([[a in actions for a in ACTIONS] for actions in chosen_sets])
    for k, action in enumerate(ACTIONS):  # every member was allowed on the row as it is now
        if membership[:, k].any():
            _change(trial, action, membership[:, k])
    scored = bundle.decide(trial, None if requested is None else requested[owners], explain=False,
                           num_threads=num_threads, disputed=None if disputed is None else [disputed[i] for i in owners])
    reached = _goal(now.grade[owners], now.decision[owners], scored.grade, scored.decision)
    sizes = membership.sum(axis=1)
    best: dict[int, int] = {}
    for j in np.flatnonzero(reached):
        i = int(owners[j])
        if i not in best or (sizes[j], scored.pd[j]) < (sizes[best[i]], scored.pd[best[i]]):
            best[i] = j
    for i, j in best.items():
        actions = chosen_sets[j]
        amounts = [None if a.amount is None else float(profile.at[i, a.amount]) for a in actions]
        out[i] = Advice(str(profile.at[i, "uscc"]) if "uscc" in profile else str(i), actions, amounts,
                        float(scored.pd[j]), str(scored.grade[j]), str(scored.decision[j]), int(scored.limit[j]),
                        str(now.grade[i]), str(now.decision[i]))
    return out
