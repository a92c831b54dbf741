"""Exact tree SHAP contributions of a LightGBM model for many rows, by decision-pattern reuse.

LightGBM's ``predict(pred_contrib=True)`` runs path-dependent TreeSHAP (Lundberg et al.
2020, Algorithm 2) for every row and every tree: about 0.7 ms per row for a rating
model of ~120 trees with 15 leaves, i.e. ten minutes for a million firms.

For one tree, the SHAP vector of a row depends on the row only through the branch it
takes at each of the tree's internal nodes (the algorithm visits every node; the row's
values enter only through those left/right decisions). Rows with the same decision
pattern therefore have *identical* SHAP vectors for that tree. This module

1. computes every row's decision at every internal node with LightGBM's own rules
   (numerical ``<=`` threshold with missing-value handling ``None``/``Zero``/``NaN`` and
   ``default_left``; categorical bitsets, NaN and negative codes to the right);
2. per tree, finds the distinct patterns and runs LightGBM's own TreeSHAP
   (``pred_contrib`` with ``start_iteration=t, num_iteration=1``) on one representative
   row per pattern;
3. adds each tree's contributions to every row by table look-up, tree after tree in
   LightGBM's order, feature by feature and only for the features the tree can change
   (the others are exactly 0; the bias, each tree's expected value, is the same sum for
   every row and is added up once) -- the same sums, bit for bit, as adding whole rows.

Decisions are worked out in cache-sized blocks of rows, one ``x <= threshold`` per node
on a variant of the feature's column that already routes missing values (``_Columns``).
The per-tree ``pred_contrib`` calls use a copy of the booster: LightGBM keeps the
iteration range of a prediction in the booster, so a caller may predict with its own
booster in another thread meanwhile (``Scorer.score`` does, for the raw score).

The result equals LightGBM's ``pred_contrib`` up to floating-point summation order
(differences ~1e-15; ``tests/test_treeshap.py`` compares the two on numerical,
zero-/NaN-missing and categorical splits). As a safety net every row's contributions
must sum to its raw score (``predict(raw_score=True)``) within 1e-9; rows that do not
(a decision reproduced wrongly sent the row to another leaf) are recomputed with
LightGBM's ``pred_contrib`` and counted in :attr:`Contributions.fallback_rows`. The
net cannot see a wrong decision that leaves the row in the same leaf, so exactness
rests on the decision rules above matching LightGBM's (``Tree::NumericalDecision`` and
``Tree::CategoricalDecision``).

Units: contributions are in log-odds (the model's raw score), one column per feature
plus the bias (expected value) column.
"""

from __future__ import annotations

import threading
from concurrent.futures import Future, ThreadPoolExecutor
from dataclasses import dataclass

import lightgbm as lgb
import numpy as np
import pandas as pd

ZERO_THRESHOLD = 1e-35  # LightGBM kZeroThreshold
MAX_PATTERN_BITS = 22  # bincount over 2^bits patterns; larger trees use np.unique
CHUNK = 65_536  # rows per block when adding up trees (a block of one feature's sums stays in L2)
BLOCK = 65_536  # rows per block when working out decision patterns
TOLERANCE = 1e-9


@dataclass
class _Node:
    feature: int
    numerical: bool
    threshold: float
    categories: np.ndarray  # categorical: codes that go left
    default_left: bool
    missing: str  # None | Zero | NaN
    table: np.ndarray | None = None  # categorical: 0/1 per category index (see _Columns)


@dataclass
class _Tree:
    nodes: list[_Node]  # internal nodes in any fixed order; bit k of the pattern = node k goes left


@dataclass
class Contributions:
    """SHAP matrix ``values`` (rows x (features + 1), last column the bias) and diagnostics."""

    values: np.ndarray
    fallback_rows: int
    patterns: int  # total distinct (tree, decision pattern) pairs evaluated with TreeSHAP


def _parse(booster: lgb.Booster) -> list[_Tree]:
    trees = []
    for info in booster.dump_model()["tree_info"]:
        nodes: list[_Node] = []
        stack = [info["tree_structure"]]
        while stack:
            n = stack.pop()
            if "leaf_index" in n or "split_feature" not in n:
                continue
            numerical = n["decision_type"] == "<="
            cats = (np.array([int(v) for v in str(n["threshold"]).split("||")], dtype=np.int64)
                    if not numerical else np.empty(0, dtype=np.int64))
            nodes.append(_Node(int(n["split_feature"]), numerical, float(n["threshold"]) if numerical else 0.0,
                               cats, bool(n["default_left"]), str(n["missing_type"])))
            stack.extend([n["left_child"], n["right_child"]])
        trees.append(_Tree(nodes))
    return trees


def numeric_matrix(booster: lgb.Booster, X: pd.DataFrame) -> np.ndarray:
    """``X`` as the float64 matrix LightGBM predicts on (pandas categoricals as the model's codes)."""
    names = booster.feature_name()
    cats = list(getattr(booster, "pandas_categorical", None) or [])
    out = np.empty((len(X), len(names)), dtype=np.float64, order="F")  # column-major: read a feature at a time
    k = 0
    for j, name in enumerate(names):
        col = X[name]
        if isinstance(col.dtype, pd.CategoricalDtype):
            codes = col.cat.set_categories(cats[k]).cat.codes.to_numpy() if k < len(cats) else col.cat.codes.to_numpy()
            k += 1
            out[:, j] = np.where(codes < 0, np.nan, codes)
        else:
            out[:, j] = pd.to_numeric(col, errors="coerce").to_numpy(dtype=np.float64, na_value=np.nan)
    return out


class _Columns:
    """Feature columns as contiguous float64 arrays, one per missing-value rule a node applies.

    A node's decision becomes a single ``x <= threshold`` on the variant of its feature's
    column for its rule: NaN, or (``Zero`` missing type) values in ``[-1e-35, 1e-35]``,
    replaced by ``-inf`` where they go left and by NaN where they go right (``NaN <= t``
    is False, ``-inf <= t`` True); the ``None`` and ``Zero`` types read NaN as 0 first.
    Categorical features become indices into per-node 0/1 tables: code + 1, with NaN and
    negative codes 0 and codes above every listed category one past the largest.
    """

    def __init__(self, M: np.ndarray, trees: list[_Tree]) -> None:
        self.M = M
        self.numeric: dict[tuple[int, str, bool], np.ndarray] = {}
        self.categorical: dict[int, np.ndarray] = {}
        top: dict[int, int] = {}
        for tree in trees:
            for node in tree.nodes:
                if node.numerical:
                    key = (node.feature, node.missing, node.default_left)
                    if key not in self.numeric:
                        self.numeric[key] = self._variant(*key)
                else:
                    top[node.feature] = max(top.get(node.feature, -1), int(node.categories.max(initial=-1)))
        for j, c in top.items():
            x = M[:, j]
            codes = np.where(np.isnan(x), -1, x).astype(np.int64)
            self.categorical[j] = np.clip(codes, -1, c + 1) + 1

    def _variant(self, j: int, missing: str, default_left: bool) -> np.ndarray:
        x = np.ascontiguousarray(self.M[:, j], dtype=np.float64)
        nan = np.isnan(x)
        if missing == "NaN":  # NaN follows default_left
            return np.where(nan, -np.inf, x) if default_left else x
        x = np.where(nan, 0.0, x)  # NaN read as 0
        if missing == "Zero":  # (near-)zero follows default_left
            special = (x >= -ZERO_THRESHOLD) & (x <= ZERO_THRESHOLD)
            x[special] = -np.inf if default_left else np.nan
        return x

    def left_table(self, node: _Node) -> np.ndarray:
        """0/1 (uint16) per categorical index: 1 where the node sends the category left."""
        size = int(self.categorical[node.feature].max(initial=0)) + 2
        table = np.zeros(max(size, int(node.categories.max(initial=-1)) + 2), dtype=np.uint16)
        cats = node.categories[node.categories >= 0]
        table[cats + 1] = 1
        return table


def _goes_left(node: _Node, cols: _Columns, rows: slice, out: np.ndarray) -> None:
    """LightGBM's NumericalDecision / CategoricalDecision for ``rows``, written into ``out`` as 0/1."""
    if not node.numerical:  # NaN and negative codes go right; listed categories go left
        assert node.table is not None, "a categorical node has its table"
        np.take(node.table, cols.categorical[node.feature][rows], out=out)
        return
    np.less_equal(cols.numeric[(node.feature, node.missing, node.default_left)][rows], node.threshold, out=out,
                  casting="unsafe")


def _patterns(tree: _Tree, cols: _Columns) -> np.ndarray:
    """Decision pattern per row: bit ``len - 1 - k`` set when the row goes left at internal node ``k``.

    Worked out in blocks of rows that stay in cache; uint16 codes for trees of up to 16 nodes.
    """
    n = cols.M.shape[0]
    dtype = np.uint16 if len(tree.nodes) <= 16 else np.uint32 if len(tree.nodes) <= 32 else np.uint64
    code = np.zeros(n, dtype=dtype)
    left = np.empty(min(n, BLOCK), dtype=np.uint16)
    for start in range(0, n, BLOCK):
        rows = slice(start, min(start + BLOCK, n))
        c = code[rows]
        bit = left[:len(c)]
        for node in tree.nodes:
            _goes_left(node, cols, rows, bit)
            np.left_shift(c, 1, out=c)
            np.bitwise_or(c, bit, out=c)
    return code


def contributions(booster: lgb.Booster, X: pd.DataFrame, threads: int = 2,
                  raw: np.ndarray | Future[np.ndarray] | None = None) -> Contributions:
    """Exact TreeSHAP contributions of ``booster`` for every row of ``X`` (see module docstring).

    ``raw``: ``booster.predict(X, raw_score=True)`` when the caller has it already (the
    safety net checks each row's sum against it), or a future of it (a caller may predict
    with ``booster`` in another thread meanwhile: the per-tree predictions here use a copy
    of the booster, since LightGBM keeps a prediction's iteration range in the booster);
    computed here otherwise.
    """
    M = numeric_matrix(booster, X)
    n, f = M.shape
    if n == 0:
        return Contributions(np.zeros((0, f + 1)), 0, 0)
    trees = _parse(booster)
    cols = _Columns(M, trees)
    for tree in trees:
        for node in tree.nodes:
            if not node.numerical:
                node.table = cols.left_table(node)
    own = lgb.Booster(model_str=booster.model_to_string())  # iteration ranges set here touch no one else's
    predict_lock = threading.Lock()
    positions = np.arange(n, dtype=np.int64)

    def tree_table(t: int) -> tuple[np.ndarray, np.ndarray]:
        """(distinct SHAP rows of tree ``t``, row -> index into them)."""
        tree = trees[t]
        # a single leaf: its value is all bias
        code = np.zeros(n, dtype=np.uint16) if not tree.nodes else _patterns(tree, cols)
        if len(tree.nodes) <= MAX_PATTERN_BITS:
            first = np.full(1 << len(tree.nodes), -1, dtype=np.int64)
            first[code] = positions  # some row of each pattern
            present = np.flatnonzero(first >= 0)
            where = np.zeros(1 << len(tree.nodes), dtype=np.uint16 if len(present) <= 65_535 else np.int64)
            where[present] = np.arange(len(present))
            reps, idx = first[present], where[code]
        else:
            _, reps, idx = np.unique(code, return_index=True, return_inverse=True)
        with predict_lock:  # LightGBM keeps the iteration range of a prediction in the booster
            table = own.predict(M[reps], pred_contrib=True, start_iteration=t, num_iteration=1)
        small = np.uint16 if len(reps) <= np.iinfo(np.uint16).max else np.int64
        return np.asarray(table, dtype=np.float64), idx.astype(small)

    with ThreadPoolExecutor(max(1, threads)) as pool:
        tables = list(pool.map(tree_table, range(len(trees))))
        # per tree, only the columns it can change: TreeSHAP leaves the others at exactly 0, and
        # adding a zero never changes a sum that starts at +0.0 (it is never -0.0), so skipping
        # them keeps every sum bit for bit (same addends, same order)
        # a column that every tree fills with one value whatever the row (the bias: each tree's
        # expected value) is the same sum for every row: added up once, in the same order
        constant = [j for j in range(f + 1) if all((table[:, j] == table[0, j]).all() for table, _ in tables)]
        columns = [(np.ascontiguousarray(table.T), np.setdiff1d(np.flatnonzero((table != 0.0).any(axis=0)), constant),
                    idx) for table, idx in tables]
        values_t = np.zeros((f + 1, n), dtype=np.float64)  # feature-major: each sum runs along a row
        for j in constant:
            total = np.zeros(1)
            for table, _ in tables:
                total += table[0, j]
            values_t[j] = total[0]

        def add(start: int) -> None:
            """Sum the trees' contributions for one block of rows, trees in LightGBM's order."""
            stop = min(start + CHUNK, n)
            part = np.empty(stop - start)
            for table_t, used, idx in columns:
                rows = idx[start:stop].astype(np.intp)
                for j in used:  # mode="wrap": no bounds checks (indices are in range), 2x faster
                    np.take(table_t[j], rows, out=part, mode="wrap")
                    values_t[j, start:stop] += part

        list(pool.map(add, range(0, n, CHUNK)))
    values = values_t.T

    if raw is None:
        raw = np.asarray(booster.predict(M, raw_score=True))
    raw = np.asarray(raw.result() if isinstance(raw, Future) else raw, dtype=np.float64)
    if raw.shape != (n,):
        raise ValueError(f"raw scores: expected {n} values, got shape {raw.shape}")
    bad = np.flatnonzero(~np.isclose(values.sum(axis=1), raw, rtol=0.0, atol=TOLERANCE))
    if len(bad):
        values[bad] = own.predict(M[bad], pred_contrib=True)
    return Contributions(values, int(len(bad)), int(sum(len(t) for t, _ in tables)))


__all__ = ["Contributions", "contributions", "numeric_matrix"]
