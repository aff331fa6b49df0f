"""The compiled walk of :mod:`models.shapley` (numba), for lists of many rows.

Imported only when a list is explained (``models.shapley._kernels``), so that light commands and
the service never load numba. Module-level functions, so that numba caches the machine code on
disk and a new process loads it instead of compiling again.
"""

from __future__ import annotations

import numba
import numpy as np


@numba.njit(cache=True, inline="always")
def goes_left(v, node, threshold, categorical, default_left, missing, cat_row, cat_sets):
    # LightGBM's own decision rules (tree.h: NumericalDecision, CategoricalDecision)
    if categorical[node]:
        if np.isnan(v) or v < 0:
            return False
        code = int(v)
        return code < cat_sets.shape[1] and cat_sets[cat_row[node], code]
    kind = missing[node]
    if np.isnan(v) and kind != 2:
        v = 0.0
    if (kind == 1 and -1e-35 <= v <= 1e-35) or (kind == 2 and np.isnan(v)):
        return default_left[node]
    return v <= threshold[node]


@numba.njit(cache=True)
def reference_left(reference, roots, feature, threshold, categorical, default_left, missing, left, right,
                   value, cat_row, cat_sets):
    """Per node of the trees: does the reference row go left there?"""
    out = np.zeros(len(feature), dtype=np.bool_)
    for node in range(len(feature)):
        if feature[node] >= 0:
            out[node] = goes_left(reference[feature[node]], node, threshold, categorical, default_left, missing,
                                  cat_row, cat_sets)
    return out


def _walk(matrix, reference_left, max_depth, roots, feature, threshold, categorical, default_left, missing, left,
          right, value, cat_row, cat_sets, out):
    factorial = np.ones(max_depth + 2)
    for k in range(1, max_depth + 2):
        factorial[k] = factorial[k - 1] * k
    size = 2 * (max_depth + 2)
    for i in numba.prange(matrix.shape[0]):
        x = matrix[i]
        path_feature = np.empty(max_depth + 1, dtype=np.int64)
        path_side = np.empty(max_depth + 1, dtype=np.int64)
        stack = np.empty((size, 6), dtype=np.int64)  # node, path length, a, b, added feature, its side
        for root in roots:
            top = 0
            stack[0, 0], stack[0, 1], stack[0, 2], stack[0, 3], stack[0, 4], stack[0, 5] = root, 0, 0, 0, -1, 0
            top = 1
            while top > 0:
                top -= 1
                node, length, a, b, added, side = (stack[top, 0], stack[top, 1], stack[top, 2], stack[top, 3],
                                                  stack[top, 4], stack[top, 5])
                if added >= 0:
                    path_feature[length - 1] = added
                    path_side[length - 1] = side
                f = feature[node]
                if f < 0:
                    if a + b == 0:
                        continue
                    v = value[node]
                    gain = v * factorial[a - 1] * factorial[b] / factorial[a + b] if a > 0 else 0.0
                    loss = v * factorial[a] * factorial[b - 1] / factorial[a + b] if b > 0 else 0.0
                    for k in range(length):
                        if path_side[k] == 1:
                            out[i, path_feature[k]] += gain
                        else:
                            out[i, path_feature[k]] -= loss
                    continue
                x_left = goes_left(x[f], node, threshold, categorical, default_left, missing, cat_row, cat_sets)
                r_left = reference_left[node]
                x_child = left[node] if x_left else right[node]
                if x_left == r_left:
                    stack[top, 0], stack[top, 1], stack[top, 2], stack[top, 3], stack[top, 4], stack[top, 5] = \
                        x_child, length, a, b, -1, 0
                    top += 1
                    continue
                r_child = right[node] if x_left else left[node]
                met = 0
                for k in range(length):
                    if path_feature[k] == f:
                        met = path_side[k]
                        break
                if met == 1:
                    stack[top, 0], stack[top, 1], stack[top, 2], stack[top, 3], stack[top, 4], stack[top, 5] = \
                        x_child, length, a, b, -1, 0
                    top += 1
                elif met == 2:
                    stack[top, 0], stack[top, 1], stack[top, 2], stack[top, 3], stack[top, 4], stack[top, 5] = \
                        r_child, length, a, b, -1, 0
                    top += 1
                else:
                    stack[top, 0], stack[top, 1], stack[top, 2], stack[top, 3], stack[top, 4], stack[top, 5] = \
                        x_child, length + 1, a + 1, b, f, 1
                    stack[top + 1, 0], stack[top + 1, 1], stack[top + 1, 2], stack[top + 1, 3], \
                        stack[top + 1, 4], stack[top + 1, 5] = r_child, length + 1, a, b + 1, f, 2
                    top += 2


serial = numba.njit(cache=True)(_walk)
parallel = numba.njit(cache=True, parallel=True)(_walk)
