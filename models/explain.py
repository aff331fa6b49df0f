"""Reason codes: the factors behind each decision, in words, from the PD model's contributions.

A contribution is a feature's exact share of the gap between the decision's log-odds of default
and those of one stated reference profile (see "against a reference" below); the reference's
log-odds plus every contribution is the decision's margin. Adverse factors raise the odds of
default against the reference, positive ones lower them. Each reason carries the registry's code
and texts, the enterprise's value, the reference's value and its contribution. Features the
registry does not know (a model fitted on another frame) are named as they are.
"""

from __future__ import annotations

import math
from functools import cached_property

import numpy as np
import pandas as pd

from features.registry import BY_NAME

ADVERSE, POSITIVE = 4, 4
"""How many adverse and positive factors each decision names."""


def plain_value(value):
    """A profile value as JSON holds it: None for missing (None, NaN, pd.NA), NumPy scalars as Python's."""
    if value is None or (isinstance(value, float) and math.isnan(value)) or value is pd.NA:
        return None
    return value.item() if hasattr(value, "item") else value


def reason(feature: str, value, contribution: float, reference=None) -> dict:
    """One factor: code, feature, Chinese and English text, the value, the reference profile's
    value and the contribution (against that reference)."""
    declared = BY_NAME.get(feature)
    return {
        "code": declared.code if declared else feature,
        "feature": feature,
        "zh": declared.zh if declared else feature,
        "en": declared.en if declared else feature,
        "unit": declared.unit if declared else None,
        "value": plain_value(value),
        "reference_value": plain_value(reference),
        "contribution": round(float(contribution), 4),
    }


def top_factors(contributions: np.ndarray, adverse: int = ADVERSE,
                positive: int = POSITIVE) -> tuple[np.ndarray, np.ndarray]:
    """Per row, the column indices of the largest positive contributions (adverse, strongest
    first) and of the most negative (positive factors, strongest first); -1 pads rows with fewer."""
    order = np.argsort(-contributions, axis=1, kind="stable")
    worst = order[:, :adverse]
    best = np.argsort(contributions, axis=1, kind="stable")[:, :positive]
    worst = np.where(np.take_along_axis(contributions, worst, axis=1) > 0, worst, -1)
    best = np.where(np.take_along_axis(contributions, best, axis=1) < 0, best, -1)
    return worst, best


# ---------------------------------------------------------------------- reasons a person reads
#
# The contributions are turned into stated reasons by :class:`ReasonPlan`, under the policy's fair
# use: a missing value is a fact about the record, said once per cause in the registry's words
# (features.registry.SOURCE_ABSENCE and FEATURE_ABSENCE), never named as the feature's behaviour;
# features the policy never names to an enterprise are kept apart (their share is shown to the
# regulator); and as many adverse reasons are named as it takes to cover the policy's share of
# the adverse effect.


class ReasonPlan:
    """How one model's contributions become reasons (built once per model and policy).

    A reason is an *item*: a behaviour (one feature with a value) or an absence (the features
    missing for one cause, their contributions summed). ``not_named`` features are never items."""

    def __init__(self, features: list[str], not_named=(), coverage: float = 0.8):
        from features.registry import COVERAGE_FLAG, SOURCE_ABSENCE, absence_words
        from features.schemas import SOURCES

        self.features, self.coverage = list(features), float(coverage)
        self.not_named = np.array([f in set(not_named) for f in features], dtype=bool)
        self.groups: list[dict] = []
        source_group = {}
        undelivered_group = {}
        for number, source in enumerate(SOURCES, start=1):
            if source in SOURCE_ABSENCE:
                source_group[source] = len(self.groups)
                zh, en = SOURCE_ABSENCE[source]
                self.groups.append({"code": f"NA{number:02d}", "kind": "absence", "source": source, "zh": zh, "en": en,
                                    "flag": COVERAGE_FLAG[source]})
        for number, source in enumerate(SOURCES, start=1):  # after the others: their codes and places stay
            if source in SOURCE_ABSENCE:
                undelivered_group[source_group[source]] = len(self.groups)
                self.groups.append({"code": f"ND{number:02d}", "kind": "absence", "source": source,
                                    "zh": f"{SOURCES[source].department_zh}未按期报送{SOURCES[source].title_zh}，平台暂无其近期记录（不视为企业行为）",
                                    "en": f"{SOURCES[source].department_en} has not delivered its {SOURCES[source].title_en} "
                                          "on time: no recent record is held (not the enterprise's behaviour)"})
        self.feature_group = np.full(len(features), -1, dtype=np.int64)
        source_groups: list[list[int]] = []  # per feature, the groups of its sources that have a coverage flag
        self.flag_group = np.full(len(features), -1, dtype=np.int64)  # a coverage flag's own source
        for j, name in enumerate(features):
            declared = BY_NAME.get(name)
            source_groups.append([source_group[s] for s in declared.sources if s in source_group]
                                      if declared else [])
            if declared is None:
                continue
            if declared.family == "coverage" and len(declared.sources) == 1:
                self.flag_group[j] = source_group.get(declared.sources[0], -1)
            zh, en = absence_words(name)
            self.feature_group[j] = len(self.groups)
            self.groups.append({"code": f"NA{declared.code}", "kind": "absence", "source": declared.sources[0],
                                "zh": zh, "en": en, "feature": name})
        self.flags = [g["flag"] for g in self.groups if "flag" in g]
        # a source group's "not delivered" twin, by group index (-1 for the rest)
        self.undelivered = np.full(len(self.groups) + 1, -1, dtype=np.int64)
        for group, twin in undelivered_group.items():
            self.undelivered[group] = twin
        # the same, as arrays: each feature's source groups in order (padded with -1), and the flags' columns
        width = max((len(g) for g in source_groups), default=0)
        self.source_table = np.full((len(features), width), -1, dtype=np.int64)
        for j, groups in enumerate(source_groups):
            self.source_table[j, :len(groups)] = groups
        self.flag_columns = np.flatnonzero(self.flag_group >= 0)
        position = {name: j for j, name in enumerate(features)}
        self.flag_positions = np.array([position.get(flag, -1) for flag in self.flags], dtype=np.int64)

    def absences(self, matrix: np.ndarray, flags: np.ndarray) -> np.ndarray:
        """(rows, features): the absence group each value belongs to (-1: a value, not an
        absence). ``matrix``: the model's encoded inputs (NaN where missing); ``flags``: (rows,
        sources with a coverage flag), 1 where the platform holds records of that source, 0 where
        it holds none, NaN where the department has not delivered on time ("not delivered")."""
        missing = np.isnan(matrix) & ~self.not_named  # a never-named feature is no part of any absence
        out = np.where(missing, self.feature_group, -1)
        blank = np.zeros((len(flags), 1), dtype=bool)  # column -1: never uncovered
        uncovered = np.hstack([flags == 0, blank])
        undelivered = np.hstack([np.isnan(flags), blank])
        for k in reversed(range(self.source_table.shape[1])):  # the first of its sources that holds nothing says why
            group = self.source_table[:, k]
            out = np.where(missing & uncovered[:, group], group, out)
            out = np.where(missing & undelivered[:, group], self.undelivered[group], out)
        # "holds no records of it" (a coverage flag at 0) is the source's absence, said once
        flagged = self.flag_columns
        out[:, flagged] = np.where(matrix[:, flagged] == 0, self.flag_group[flagged], out[:, flagged])
        return np.where(self.not_named, -1, out)

    def state(self, contributions: np.ndarray, absences: np.ndarray) -> StatedReasons:
        """The items of every row, and which of them each row names."""
        n, p = contributions.shape
        groups = len(self.groups)
        named = ~self.not_named
        absent = absences >= 0
        # each cell goes to its own feature's item, or to its absence's (after the p features)
        slot = np.where(absent, absences + p, np.arange(p))
        slot = np.where(named, slot, p + groups)  # never-named features go to a bin that is dropped
        flat = (slot + np.arange(n)[:, None] * (p + groups + 1)).ravel()
        items = np.bincount(flat, contributions.ravel(),
                            minlength=n * (p + groups + 1)).reshape(n, p + groups + 1)[:, :p + groups]
        positive_part = np.maximum(items, 0.0)
        adverse_total = positive_part.sum(axis=1)
        order = np.argsort(-items, axis=1, kind="stable")
        ranked = np.take_along_axis(items, order, axis=1)
        running = np.cumsum(np.maximum(ranked, 0.0), axis=1)
        # the fewest strongest adverse items whose sum reaches the policy's share
        needed = np.where(adverse_total > 0,
                          (running < self.coverage * adverse_total[:, None] - 1e-12).sum(axis=1) + 1, 0)
        needed = np.minimum(needed, (ranked > 0).sum(axis=1))
        width = int(needed.max()) if n else 0
        adverse = np.where(np.arange(width)[None, :] < needed[:, None], order[:, :width], -1)
        best = np.argsort(items, axis=1, kind="stable")[:, :POSITIVE]
        positive = np.where(np.take_along_axis(items, best, axis=1) < 0, best, -1)
        return StatedReasons(self, items, absences, adverse, positive, adverse_total,
                             np.where(self.not_named, contributions, 0.0))

    def item_code(self, item: int) -> str:
        if item < len(self.features):
            declared = BY_NAME.get(self.features[item])
            return declared.code if declared else self.features[item]
        return self.groups[item - len(self.features)]["code"]


class StatedReasons:
    """A batch's reasons (see :class:`ReasonPlan`): per row the items' contributions, which
    items are named as adverse (enough to cover the policy's share) and as positive, and the
    contributions of the features never named (``withheld``)."""

    def __init__(self, plan: ReasonPlan, items, absences, adverse, positive, adverse_total, withheld):
        self.plan, self.items, self.absences = plan, items, absences
        self.adverse, self.positive = adverse, positive
        self.adverse_total, self.withheld = adverse_total, withheld
        self._coverage = None

    def coverage(self) -> np.ndarray:
        """Per row, the share of the nameable adverse effect the named adverse reasons cover (1 when none)."""
        if self._coverage is None:
            self._coverage = self._named_share()
        return self._coverage

    def _named_share(self) -> np.ndarray:
        named = np.where(self.adverse >= 0, np.take_along_axis(self.items, np.maximum(self.adverse, 0), axis=1), 0.0)
        with np.errstate(invalid="ignore", divide="ignore"):
            return np.where(self.adverse_total > 0, named.sum(axis=1) / self.adverse_total, 1.0)

    def codes(self, which: str) -> np.ndarray:
        """Per row, the codes of the named ``"adverse"`` or ``"positive"`` reasons, strongest first, joined by ``;``."""
        indices = getattr(self, which)
        codes = np.array([*(self.plan.item_code(k) for k in range(self.items.shape[1])), ""])
        picked = codes[np.where(indices >= 0, indices, len(codes) - 1)]
        out = picked[:, 0] if picked.shape[1] else np.full(len(picked), "")
        for k in range(1, picked.shape[1]):  # column by column: NumPy's string loops, not Python's
            out = np.where(picked[:, k] != "", np.strings.add(np.strings.add(out, ";"), picked[:, k]), out)
        return out.astype(object)

    def row(self, i: int, value_of, reference: dict) -> dict:
        """Row ``i``'s reasons in words: ``value_of(feature)`` gives its raw value."""
        plan, p = self.plan, len(self.plan.features)

        def item(k: int) -> dict:
            contribution = float(self.items[i, k])
            if k < p:
                name = plan.features[k]
                out = reason(name, value_of(name), contribution, reference.get(name))
                out["kind"] = "behaviour"
                out["sources"] = list(BY_NAME[name].sources) if name in BY_NAME else []
                return out
            group = plan.groups[k - p]
            members = [plan.features[j] for j in np.flatnonzero(self.absences[i] == k - p)]
            return {"code": group["code"], "kind": "absence", "feature": group.get("feature"), "zh": group["zh"],
                    "en": group["en"], "unit": None, "value": None, "reference_value": None,
                    "contribution": round(contribution, 4), "sources": [group["source"]], "features": members}

        withheld = [{"feature": plan.features[j], "value": plain_value(value_of(plan.features[j])),
                     "contribution": round(float(self.withheld[i, j]), 4)}
                    for j in np.flatnonzero(plan.not_named)]
        named = sum(float(self.items[i, k]) for k in self.adverse[i] if k >= 0)
        everything = float(self.adverse_total[i]) + float(np.maximum(self.withheld[i], 0.0).sum())
        return {"adverse": [item(int(k)) for k in self.adverse[i] if k >= 0],
                "positive": [item(int(k)) for k in self.positive[i] if k >= 0],
                "coverage": round(float(self.coverage()[i]), 4),
                # the same named reasons against all of the adverse effect, the never-named features' included
                "coverage_of_all": round(named / everything, 4) if everything > 0 else 1.0,
                "not_named": withheld}


# ---------------------------------------------------------------------- against a reference
#
# A decision is explained against one stated reference profile r: feature j's contribution is its
# Shapley value in the game v(S) = f(x_S, r_rest), the model's margin with the features in S taken
# from the enterprise and the rest from the reference (interventional TreeSHAP with a background
# of one row, as ``shap.TreeExplainer(model, data=r, feature_perturbation="interventional")``
# computes it). It is exact and additive: f(r) + Σ contributions == f(x). And for a model that is
# monotone in a feature, each marginal step from r_j to x_j moves the margin the declared way, so
# a feature whose value is on the favourable side of the reference can never be an adverse factor.
#
# For one tree the value has a closed form (Lundberg et al. 2020, "From local explanations to
# global understanding", algorithm for independent features): walk the tree following x and r
# together; where they part on a feature not met before, follow both, counting the features only
# x's branch needs (a) and only r's (b). A leaf of value v then adds v·(a-1)!·b!/(a+b)! to each
# of the first and subtracts v·a!·(b-1)!/(a+b)! from each of the second.

_LEAF = -1
_MISSING = {"None": 0, "Zero": 1, "NaN": 2}


class TreeTables:
    """A LightGBM booster's first ``num_iteration`` trees as flat arrays, for :class:`ReferenceExplainer`."""

    def __init__(self, booster, num_iteration: int | None = None):
        dump = booster.dump_model(num_iteration=num_iteration)
        self.num_features = int(dump["max_feature_idx"]) + 1
        nodes: list[dict] = []
        cat_sets: list[list[int]] = []
        roots, depth = [], 0

        def add(node: dict, level: int) -> int:
            nonlocal depth
            depth = max(depth, level)
            index = len(nodes)
            nodes.append({})
            if "split_feature" not in node:  # a leaf (or a tree of a single leaf)
                nodes[index] = {"feature": _LEAF, "value": float(node["leaf_value"])}
                return index
            entry = {"feature": int(node["split_feature"]), "default_left": bool(node["default_left"]),
                     "missing": _MISSING[node["missing_type"]], "categorical": node["decision_type"] == "=="}
            if entry["categorical"]:
                entry["cat_row"] = len(cat_sets)
                cat_sets.append([int(c) for c in str(node["threshold"]).split("||")])
            else:
                entry["threshold"] = float(node["threshold"])
            nodes[index] = entry
            entry["left"] = add(node["left_child"], level + 1)
            entry["right"] = add(node["right_child"], level + 1)
            return index

        for tree in dump["tree_info"]:
            roots.append(add(tree["tree_structure"], 0))
        self.roots = np.asarray(roots, dtype=np.int64)
        self.max_depth = depth
        self.feature = np.array([d["feature"] for d in nodes], dtype=np.int64)
        self.threshold = np.array([d.get("threshold", 0.0) for d in nodes], dtype=np.float64)
        self.categorical = np.array([d.get("categorical", False) for d in nodes], dtype=np.bool_)
        self.default_left = np.array([d.get("default_left", False) for d in nodes], dtype=np.bool_)
        self.missing = np.array([d.get("missing", 0) for d in nodes], dtype=np.int64)
        self.left = np.array([d.get("left", -1) for d in nodes], dtype=np.int64)
        self.right = np.array([d.get("right", -1) for d in nodes], dtype=np.int64)
        self.value = np.array([d.get("value", 0.0) for d in nodes], dtype=np.float64)
        self.cat_row = np.array([d.get("cat_row", -1) for d in nodes], dtype=np.int64)
        width = max((max(s) for s in cat_sets if s), default=0) + 1
        self.cat_sets = np.zeros((max(len(cat_sets), 1), width), dtype=np.bool_)
        for row, members in enumerate(cat_sets):
            self.cat_sets[row, members] = True

    @cached_property
    def _leaf_paths(self) -> LeafPaths:
        return LeafPaths(self)

    def leaf_paths(self) -> LeafPaths:
        """The trees leaf by leaf (built once)."""
        return self._leaf_paths

    def arrays(self) -> tuple:
        return (self.roots, self.feature, self.threshold, self.categorical, self.default_left, self.missing,
                self.left, self.right, self.value, self.cat_row, self.cat_sets)


COMPILED_FROM_ROWS = 64
"""From this many rows an explanation runs the compiled walk (numba); fewer rows, and every row
the service explains, take :class:`LeafPaths` in NumPy: the compiled walk is twenty times faster
on a list but loading numba costs a service worker about 120 MB, which a few hundred microseconds
per decision do not justify."""


class LeafPaths:
    """Each leaf of the trees with, for every feature its path tests, what a value must be to
    reach it: an interval for numbers (and whether a missing value, or zero where LightGBM treats
    zero as missing, gets there), a set of category codes for categories. The per-leaf form of the
    walk above, evaluated for all leaves at once in NumPy: a feature on a leaf's path is "only x's"
    when the enterprise's value passes its tests and the reference's fails, "only r's" the other
    way round, and the leaf is out of reach when both fail."""

    def __init__(self, tables: TreeTables):
        t, width = tables, tables.cat_sets.shape[1]
        pairs: list[tuple] = []  # (feature, lo, hi, nan_ok, zero_ok, category mask or None)
        starts, values, self.constant = [], [], 0.0

        def walk(node: int, tests: dict) -> None:
            f = t.feature[node]
            if f < 0:
                if not tests:  # a tree of one leaf: the same for every row
                    self.constant += float(t.value[node])
                    return
                starts.append(len(pairs))
                values.append(float(t.value[node]))
                pairs.extend((feature, *test) for feature, test in tests.items())
                return
            for go_left, child in ((True, t.left[node]), (False, t.right[node])):
                lo, hi, nan_ok, zero_ok, mask = tests.get(f, (-np.inf, np.inf, True, True, None))
                if t.categorical[node]:
                    side = np.zeros(width + 1, dtype=bool)
                    side[:width] = t.cat_sets[t.cat_row[node]] if go_left else ~t.cat_sets[t.cat_row[node]]
                    side[width] = not go_left  # missing, negative and unseen codes go right
                    mask = side if mask is None else mask & side
                else:
                    threshold, kind, default_left = t.threshold[node], t.missing[node], t.default_left[node]
                    zero_left = default_left if kind == 1 else 0.0 <= threshold
                    nan_left = default_left if kind == 2 else zero_left  # otherwise a missing value is read as 0
                    nan_ok, zero_ok = nan_ok and nan_left == go_left, zero_ok and zero_left == go_left
                    lo, hi = (lo, min(hi, threshold)) if go_left else (max(lo, threshold), hi)
                walk(child, {**tests, f: (lo, hi, nan_ok, zero_ok, mask)})

        for root in t.roots:
            walk(int(root), {})
        self.width, self.zero_as_missing = width, bool((t.missing[t.feature >= 0] == 1).any())
        self.feature = np.array([q[0] for q in pairs], dtype=np.int64)
        self.lo = np.array([q[1] for q in pairs], dtype=np.float64)
        self.hi = np.array([q[2] for q in pairs], dtype=np.float64)
        self.nan_ok = np.array([q[3] for q in pairs], dtype=bool)
        self.zero_ok = np.array([q[4] for q in pairs], dtype=bool)
        self.categorical = np.array([q[5] is not None for q in pairs], dtype=bool)
        self.masks = np.array([q[5] for q in pairs if q[5] is not None], dtype=bool).reshape(-1, width + 1)
        self.starts = np.array(starts, dtype=np.int64)
        self.values = np.array(values, dtype=np.float64)
        self.depth = int(np.diff(np.r_[starts, len(pairs)]).max()) if len(starts) else 0

    @classmethod
    def merge(cls, parts: list[tuple[float, LeafPaths]]) -> LeafPaths:
        """The leaves of several tree models as one, each leaf's value times its model's weight:
        the leaves of ``Σ weight · model``, so one pass explains the sum."""
        out = cls.__new__(cls)
        out.width = max(p.width for _, p in parts)
        out.zero_as_missing = any(p.zero_as_missing for _, p in parts)
        for name in ("feature", "lo", "hi", "nan_ok", "zero_ok", "categorical"):
            setattr(out, name, np.concatenate([getattr(p, name) for _, p in parts]))
        masks = []
        for _, p in parts:  # codes beyond a model's own categories go where its "outside" column says
            outside = p.masks[:, -1:]
            masks.append(np.hstack([p.masks[:, :-1], np.repeat(outside, out.width - p.width, axis=1), outside]))
        out.masks = np.vstack(masks)
        offsets = np.cumsum([0] + [len(p.feature) for _, p in parts[:-1]])
        out.starts = np.concatenate([p.starts + o for (_, p), o in zip(parts, offsets)])
        out.values = np.concatenate([w * p.values for w, p in parts])
        out.constant = float(sum(w * p.constant for w, p in parts))
        out.depth = max(p.depth for _, p in parts)
        return out

    @cached_property
    def _category_lookup(self) -> tuple[np.ndarray, np.ndarray, np.ndarray]:
        """Flat lookups of the categorical splits' masks (a decision's time is mostly there): the
        categorical pairs, each one's offset into the flat masks, and the masks flattened."""
        return (np.flatnonzero(self.categorical), np.arange(len(self.masks)) * (self.width + 1),
                self.masks.ravel())

    def passes(self, matrix: np.ndarray) -> np.ndarray:
        """(rows, pairs): does each row's value pass each leaf's tests on that feature?"""
        v = matrix[:, self.feature]
        with np.errstate(invalid="ignore"):
            ok = np.where(np.isnan(v), self.nan_ok, (v > self.lo) & (v <= self.hi))
        if self.zero_as_missing:
            ok = np.where(np.abs(v) <= 1e-35, self.zero_ok, ok)
        if len(self.masks):
            pairs, offsets, flat_masks = self._category_lookup
            codes = v[:, pairs]
            with np.errstate(invalid="ignore"):
                inside = (codes >= 0) & (codes < self.width)  # False for a missing value
            codes = np.where(inside, codes, self.width).astype(np.int64)
            ok[:, pairs] = flat_masks[offsets + codes]
        return ok


class _NumpyWalk:
    """The walk of :class:`LeafPaths` against one reference row, in NumPy."""

    def __init__(self, paths: LeafPaths, reference: np.ndarray):
        self.paths = paths
        self.reference_passes = paths.passes(reference[None, :])[0]
        self.x_only = ~self.reference_passes
        if len(paths.starts):
            reached = ~np.logical_or.reduceat(self.x_only, paths.starts)
            # per leaf: the features on its path the reference cannot take (a)
            self.only_reference = np.add.reduceat(self.x_only.astype(np.int64), paths.starts)
        else:
            reached, self.only_reference = np.zeros(0, dtype=bool), np.zeros(0, dtype=np.int64)
        self.output = float(paths.constant + paths.values[reached].sum())
        self.factorial = np.cumprod(np.r_[1.0, np.arange(1, paths.depth + 2, dtype=np.float64)])
        self.ends = np.r_[paths.starts[1:], len(paths.feature)]
        self.fail_weight = np.where(self.x_only, 1024, 1).astype(np.int32)

    def contributions(self, matrix: np.ndarray, chunk: int = 256) -> np.ndarray:
        paths, f, width, x_only = self.paths, self.factorial, matrix.shape[1], self.x_only
        out = np.zeros(matrix.shape, dtype=np.float64)
        if not len(paths.starts):
            return out
        for first in range(0, len(matrix), chunk):
            fails = ~paths.passes(matrix[first:first + chunk])
            # one pass per leaf: a failed test only x's value could pass blocks it (counted in
            # thousands), one the reference passes is a feature "only r's" (counted in ones)
            counts = np.add.reduceat(np.where(fails, self.fail_weight, 0), paths.starts, axis=1)
            blocked, b = counts >= 1024, counts % 1024
            # only the leaves a mix of the two rows can reach, and where they differ, add anything
            rows, leaves = np.nonzero(~blocked & (b + self.only_reference > 0))
            if not len(rows):
                continue
            a, b = self.only_reference[leaves], b[rows, leaves]
            n, value = a + b, paths.values[leaves]
            gain = np.where(a > 0, value * f[np.maximum(a - 1, 0)] * f[b] / f[n], 0.0)
            loss = np.where(b > 0, value * f[a] * f[np.maximum(b - 1, 0)] / f[n], 0.0)
            lengths = self.ends[leaves] - paths.starts[leaves]
            owner = np.repeat(np.arange(len(leaves)), lengths)
            pair = np.repeat(paths.starts[leaves] - np.cumsum(np.r_[0, lengths[:-1]]), lengths) + np.arange(lengths.sum())
            share = np.where(x_only[pair], gain[owner], np.where(fails[rows[owner], pair], -loss[owner], 0.0))
            cell = rows[owner] * width + paths.feature[pair]
            out[first:first + chunk] = np.bincount(cell, share, minlength=len(fails) * width).reshape(len(fails), width)
        return out


class ReferenceExplainer:
    """Explanations of one booster's trees against one reference row (see above): built once per
    model and reference, then :meth:`contributions` of any rows."""

    def __init__(self, tables: TreeTables, reference: np.ndarray):
        reference = np.ascontiguousarray(np.asarray(reference, dtype=np.float64).reshape(-1))
        if len(reference) != tables.num_features:
            raise ValueError(f"the reference has {len(reference)} columns; the trees read {tables.num_features}")
        self.tables, self.reference = tables, reference
        self.paths = tables.leaf_paths()
        self.walk = _NumpyWalk(self.paths, reference)
        self.reference_output = self.walk.output
        self._reference_left = None

    def contributions(self, matrix: np.ndarray, num_threads: int = 0, compiled: bool | None = None) -> np.ndarray:
        """Per row of ``matrix`` (the booster's encoded inputs): each column's contribution to the
        trees' raw output; ``contributions.sum(axis=1) + reference_output`` is the row's output.
        ``compiled`` chooses the walk (by default, the compiled one from
        :data:`COMPILED_FROM_ROWS` rows)."""
        matrix = np.ascontiguousarray(matrix, dtype=np.float64)
        if matrix.ndim != 2 or matrix.shape[1] != self.tables.num_features:
            raise ValueError(f"expected rows of {self.tables.num_features} columns")
        if compiled is None:
            compiled = len(matrix) >= COMPILED_FROM_ROWS
        return self._compiled(matrix, num_threads) if compiled else self.walk.contributions(matrix)

    def _compiled(self, matrix: np.ndarray, num_threads: int) -> np.ndarray:
        kernels = _kernels()
        if self._reference_left is None:
            self._reference_left = kernels["reference_left"](self.reference, *self.tables.arrays())
        out = np.zeros(matrix.shape, dtype=np.float64)
        arguments = (matrix, self._reference_left, self.tables.max_depth, *self.tables.arrays(), out)
        if num_threads == 1:
            kernels["serial"](*arguments)
            return out
        import numba

        threads = numba.get_num_threads()
        numba.set_num_threads(min(num_threads or numba.config.NUMBA_NUM_THREADS, numba.config.NUMBA_NUM_THREADS))
        try:
            kernels["parallel"](*arguments)
        finally:
            numba.set_num_threads(threads)
        return out


class Explainer:
    """A whole PD model explained against one reference: a weighted sum of boosters' trees
    (``parts``: weight and :class:`ReferenceExplainer`) plus a constant, as the two-stage model's
    margin ``a + b · m1 + m2`` is. Shapley values are linear in the model, so the parts add."""

    def __init__(self, parts: list[tuple[float, ReferenceExplainer]], constant: float = 0.0):
        self.parts = parts
        self.reference_margin = float(constant + sum(w * part.reference_output for w, part in parts))
        self._merged = None

    def contributions(self, matrix: np.ndarray, num_threads: int = 0, compiled: bool | None = None) -> np.ndarray:
        """Per row: each column's share of ``margin - reference_margin`` (``compiled``: see
        :meth:`ReferenceExplainer.contributions`; without it, one NumPy pass over every part's
        leaves at once)."""
        matrix = np.ascontiguousarray(matrix, dtype=np.float64)
        if compiled is None:
            compiled = len(matrix) >= COMPILED_FROM_ROWS
        if not compiled:
            if self._merged is None:
                self._merged = _NumpyWalk(LeafPaths.merge([(w, part.paths) for w, part in self.parts]),
                                          self.parts[0][1].reference)
            return self._merged.contributions(matrix)
        total = None
        for weight, part in self.parts:
            share = part.contributions(matrix, num_threads, True)
            total = weight * share if total is None else total + weight * share
        return total


def reference_values(rows: pd.DataFrame, columns: list[str], categorical: set[str]) -> dict:
    """The reference profile of a group of enterprises, feature by feature: None (no record)
    where most of the group has no value, else the median of the values (the most common category
    for categorical features). A profile no enterprise need have, but each of its features is
    typical of the group; "no record" counts as a value, as the model treats it as one."""
    out = {}
    for column in columns:
        series = rows[column].dropna()
        if 2 * len(series) <= len(rows):
            out[column] = None
        elif column in categorical or not pd.api.types.is_numeric_dtype(series):
            out[column] = plain_value(series.astype(str).mode().iloc[0])
        else:
            out[column] = float(pd.to_numeric(series).median())
    return out


def _kernels() -> dict:
    """The compiled walks (:mod:`models.compiled_walk`, imported here so that light commands and the
    service never load numba)."""
    from models import compiled_walk

    return {"reference_left": compiled_walk.reference_left, "serial": compiled_walk.serial,
            "parallel": compiled_walk.parallel}
