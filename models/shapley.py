"""The Shapley engine that explains a tree model's margin against one reference profile: the
trees as flat arrays (:class:`TreeTables`), leaf by leaf (:class:`LeafPaths`), walked against the
reference in NumPy or, for lists of many rows, compiled (:mod:`models.compiled_walk`). What the
contributions mean in words (reason codes, absences, the reference) is :mod:`models.explain`'s.
"""

from __future__ import annotations

from functools import cached_property

import numpy as np


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

    @cached_property
    def _reference_left(self) -> np.ndarray:
        """Where the reference row goes at every node (the compiled walk's, worked out once)."""
        return _kernels()["reference_left"](self.reference, *self.tables.arrays())

    def _compiled(self, matrix: np.ndarray, num_threads: int) -> np.ndarray:
        kernels = _kernels()
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

    @cached_property
    def _merged(self) -> _NumpyWalk:
        """Every part's leaves in one NumPy walk (built on first use)."""
        return _NumpyWalk(LeafPaths.merge([(w, part.paths) for w, part in self.parts]), self.parts[0][1].reference)

    def contributions(self, matrix: np.ndarray, num_threads: int = 0, compiled: bool | None = None) -> np.ndarray:
        """Per row: each column's share of ``margin - reference_margin`` (``compiled``: see
        :meth:`ReferenceExplainer.contributions`; without it, one NumPy pass over every part's
        leaves at once)."""
        matrix = np.ascontiguousarray(matrix, dtype=np.float64)
        if compiled is None:
            compiled = len(matrix) >= COMPILED_FROM_ROWS
        if not compiled:
            return self._merged.contributions(matrix)
        total = None
        for weight, part in self.parts:
            share = part.contributions(matrix, num_threads, True)
            total = weight * share if total is None else total + weight * share
        return total


def _kernels() -> dict:
    """The compiled walks (:mod:`models.compiled_walk`, imported here so that light commands and the
    service never load numba)."""
    from models import compiled_walk

    return {"reference_left": compiled_walk.reference_left, "serial": compiled_walk.serial,
            "parallel": compiled_walk.parallel}
