#!/usr/bin/env python3
"""Writes tests/data/affinity_reference.rs: fixed similarity matrices and scikit-learn's
affinity propagation results on them, for `tests/share.rs`.

Not needed to build or test the crate: the output is committed and the tests read only it.
Rerun it (pip install scikit-learn numpy) only to change the cases:

    python3 scripts/gen_ap_reference.py > tests/data/affinity_reference.rs

Each case is run twice through scikit-learn's own code:
- `AffinityPropagation(affinity="precomputed", preference=..., random_state=0).fit(S)`:
  sklearn's tie-breaking noise from `RandomState(0)` (what `tied::share::affinity` reproduces
  with `Noise::Sklearn { seed: 0 }`, and what the paper's sklearn 0.19 hard-coded);
- `_affinity_propagation` with a random state whose normals are all zero: the same algorithm
  with no noise (`Noise::Off`).
Other settings are sklearn's defaults (damping 0.5, max_iter 200, convergence_iter 15).
"""

import sys
import warnings

import numpy as np
import sklearn
from sklearn.cluster import AffinityPropagation
from sklearn.cluster._affinity_propagation import _affinity_propagation


class ZeroNormals:
    """A random state whose normals are zero: sklearn's noise term vanishes exactly."""

    def standard_normal(self, size):
        return np.zeros(size)


def paper_similarity(w):
    """S_ij = <w_i, w_j> / max(|w_i|^2, |w_j|^2) (utils_retrain.py), in w's dtype."""
    g = w @ w.T
    sq = np.einsum("ij,ij->i", w, w)
    return g / np.maximum(sq[:, None], sq[None, :])


def clustered_rows(rng, k, per, dim, spread, dtype=np.float64):
    centers = rng.standard_normal((k, dim))
    rows = []
    for c in range(k):
        for _ in range(per):
            scale = rng.uniform(0.7, 1.3)
            rows.append(scale * (centers[c] + spread * rng.standard_normal(dim)))
    rows = np.array(rows)
    rows = rows[rng.permutation(len(rows))]
    return rows.astype(dtype)


def neg_sqdist(x):
    d = x[:, None, :] - x[None, :, :]
    return -np.einsum("ijk,ijk->ij", d, d)


def cases():
    rng = np.random.RandomState(12)
    out = []

    w = clustered_rows(rng, 4, 7, 16, 0.15)
    s = paper_similarity(w)
    out.append(("paper_similarity_pref_0_6", s, 0.6))
    out.append(("paper_similarity_pref_median", s, None))

    x = np.concatenate(
        [rng.standard_normal((20, 2)) * 0.6 + c for c in ([0, 0], [5, 1], [1, 6])]
    )
    x = x[rng.permutation(len(x))]
    out.append(("neg_sqdist_blobs_60", neg_sqdist(x), None))

    out.append(("three_points", neg_sqdist(np.array([[0.0], [1.0], [10.0]])), None))

    w = clustered_rows(rng, 3, 6, 8, 0.2)
    s = paper_similarity(w)
    pref = rng.uniform(0.2, 0.9, size=len(w))
    out.append(("per_point_preference", s, pref))

    # The paper computes S in float32 (its weights are float32).
    w32 = clustered_rows(rng, 5, 6, 24, 0.25, dtype=np.float32)
    s32 = paper_similarity(w32).astype(np.float32)
    out.append(("paper_similarity_f32", s32, 0.6))
    out.append(("paper_similarity_f32_median", s32, None))

    # Exact duplicates: ties that only sklearn's noise breaks.
    base = clustered_rows(rng, 3, 2, 6, 0.3)
    w = np.concatenate([base, base[:3]])
    out.append(("exact_duplicates", paper_similarity(w), 0.6))

    # Integer similarities: many exact ties between off-diagonal entries.
    xi = np.concatenate([rng.randint(-3, 4, size=(8, 2)) + c for c in ([0, 0], [20, 0])])
    out.append(("integer_ties", neg_sqdist(xi.astype(np.float64)), None))

    # A point halfway between two symmetric clusters: exact ties in the label assignment.
    x = np.array([[-10.5], [-10.0], [-9.5], [0.0], [9.5], [10.0], [10.5]])
    out.append(("tie_between_clusters", neg_sqdist(x), None))

    # All off-diagonal similarities equal: sklearn's special case, both branches.
    e = np.full((5, 5), 0.25)
    out.append(("equal_similarities_high_pref", e, 0.5))
    out.append(("equal_similarities_low_pref", e, 0.1))

    # A matrix on which sklearn does not converge in 200 iterations.
    for seed in range(2000):
        r = np.random.RandomState(1000 + seed)
        a = r.standard_normal((12, 12))
        s = -np.abs(a + a.T)
        with warnings.catch_warnings():
            warnings.simplefilter("ignore")
            ap = AffinityPropagation(affinity="precomputed", random_state=0).fit(s)
        if ap.n_iter_ == 200:
            out.append(("not_converged", s, None))
            break
    else:
        sys.exit("no non-converging matrix found")
    return out


def run(s, pref, noise):
    p = np.median(s) if pref is None else pref
    with warnings.catch_warnings():
        warnings.simplefilter("ignore")
        if noise:
            ap = AffinityPropagation(affinity="precomputed", preference=pref, random_state=0)
            ap.fit(s)
            centers, labels, n_iter = ap.cluster_centers_indices_, ap.labels_, ap.n_iter_
        else:
            centers, labels, n_iter = _affinity_propagation(
                s.copy(),
                preference=np.asarray(p),
                convergence_iter=15,
                max_iter=200,
                damping=0.5,
                verbose=False,
                return_n_iter=True,
                random_state=ZeroNormals(),
            )
    return [int(v) for v in centers], [int(v) for v in labels], int(n_iter)


def fmt_floats(values):
    return ", ".join(repr(float(v)) for v in values)


def main():
    print("// Generated by scripts/gen_ap_reference.py with scikit-learn "
          f"{sklearn.__version__}, numpy {np.__version__}; do not edit.")
    print("// Cases: (name, n, f32 input, row-major S, preference, sklearn with random_state=0,")
    print("// sklearn with zero noise); results are (exemplars, labels, iterations).")
    print("const AP_CASES: &[ApCase] = &[")
    for name, s, pref in cases():
        n = s.shape[0]
        if pref is None:
            p = "RefPref::Median"
        elif np.ndim(pref) == 0:
            p = f"RefPref::Scalar({float(pref)!r})"
        else:
            p = f"RefPref::PerPoint(&[{fmt_floats(pref)}])"
        print("    ApCase {")
        print(f"        name: {name!r},".replace("'", '"'))
        print(f"        n: {n},")
        print(f"        f32: {'true' if s.dtype == np.float32 else 'false'},")
        print(f"        s: &[{fmt_floats(s.ravel())}],")
        print(f"        pref: {p},")
        for field, noise in (("noise", True), ("no_noise", False)):
            c, l, it = run(s, pref, noise)
            print(f"        {field}: ApResult {{ exemplars: &{c}, labels: &{l}, iterations: {it} }},")
        print("    },")
    print("];")


if __name__ == "__main__":
    main()
