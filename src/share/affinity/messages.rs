//! The message passing of affinity propagation and the label assignment after it, on the
//! prepared `S` (preference on the diagonal, noise added), in sklearn's order and numpy's
//! arithmetic: the responsibilities, the availabilities, the exemplar flags with the
//! convergence test, then the assignment and the exemplar refinement.

use super::{AffinityPropagation, Clustering, Precision, NO_LABEL};

/// The messages of one run: `A` and `R` (`n x n`, row-major) and the scratch of the
/// availability update.
struct Messages {
    n: usize,
    damping: f64,
    a: Vec<f64>,
    r: Vec<f64>,
    /// `max(R, 0)` with R's diagonal.
    tmp: Vec<f64>,
    /// The column sums of `tmp`.
    colsum: Vec<f64>,
}

impl Messages {
    fn new(n: usize, damping: f64) -> Self {
        Self {
            n,
            damping,
            a: vec![0.0; n * n],
            r: vec![0.0; n * n],
            tmp: vec![0.0; n * n],
            colsum: vec![0.0; n],
        }
    }

    /// Responsibilities: from the best and second-best `A + S` of each row, damped.
    fn update_responsibilities(&mut self, s: &[f64]) {
        let (n, damping, keep) = (self.n, self.damping, 1.0 - self.damping);
        for i in 0..n {
            let row = i * n..(i + 1) * n;
            let (ar, sr) = (&self.a[row.clone()], &s[row.clone()]);
            let (mut best, mut arg, mut second) = (f64::NEG_INFINITY, 0, f64::NEG_INFINITY);
            for k in 0..n {
                let v = ar[k] + sr[k];
                if v > best {
                    second = best;
                    best = v;
                    arg = k;
                } else if v > second {
                    second = v;
                }
            }
            let rr = &mut self.r[row];
            for k in 0..n {
                let new = if k == arg {
                    sr[k] - second
                } else {
                    sr[k] - best
                };
                rr[k] = rr[k] * damping + new * keep;
            }
        }
    }

    /// Availabilities: column sums of `max(R, 0)` with R's diagonal, added row by row (numpy's
    /// reduction starts from the first row, not from 0), damped.
    fn update_availabilities(&mut self) {
        let (n, damping, keep) = (self.n, self.damping, 1.0 - self.damping);
        for i in 0..n {
            for k in 0..n {
                let v = self.r[i * n + k];
                let rp = if i == k { v } else { v.max(0.0) };
                self.tmp[i * n + k] = rp;
                self.colsum[k] = if i == 0 { rp } else { self.colsum[k] + rp };
            }
        }
        for i in 0..n {
            for k in 0..n {
                let d = self.tmp[i * n + k] - self.colsum[k];
                // -A_new: clipped at 0 off the diagonal, as it is on it.
                let neg_new = if i == k { d } else { d.max(0.0) };
                let e = i * n + k;
                self.a[e] = self.a[e] * damping - neg_new * keep;
            }
        }
    }

    /// Whether point `k` is an exemplar now: `A[k, k] + R[k, k] > 0`.
    fn is_exemplar(&self, k: usize) -> bool {
        self.a[k * self.n + k] + self.r[k * self.n + k] > 0.0
    }
}

/// The exemplar flag of each point over the last `conv` iterations (a ring, sklearn's `e`),
/// and how many of those were set.
struct Flags {
    conv: usize,
    ring: Vec<bool>,
    count: Vec<usize>,
    now: Vec<bool>,
}

impl Flags {
    fn new(n: usize, conv: usize) -> Self {
        Self {
            conv,
            ring: vec![false; n * conv],
            count: vec![0; n],
            now: vec![false; n],
        }
    }

    /// Records iteration `it`'s flags; true when the run has converged: from iteration `conv`
    /// on, at least one exemplar and no flag changed over the last `conv` iterations.
    fn record(&mut self, it: usize, m: &Messages) -> bool {
        let (conv, slot) = (self.conv, it % self.conv);
        let mut exemplars = 0usize;
        for k in 0..self.now.len() {
            let f = m.is_exemplar(k);
            self.now[k] = f;
            exemplars += usize::from(f);
            let old = std::mem::replace(&mut self.ring[k * conv + slot], f);
            self.count[k] = self.count[k] + usize::from(f) - usize::from(old);
        }
        it >= conv && exemplars > 0 && self.count.iter().all(|&c| c == 0 || c == conv)
    }
}

impl AffinityPropagation {
    /// The message passing and the label assignment on the prepared `S` (preference on the
    /// diagonal, noise added).
    pub(super) fn iterate(&self, n: usize, s: &[f64], precision: Precision) -> Clustering {
        let mut m = Messages::new(n, self.damping);
        let mut flags = Flags::new(n, self.convergence_iter);
        let (mut converged, mut iterations) = (false, self.max_iter);
        for it in 0..self.max_iter {
            m.update_responsibilities(s);
            m.update_availabilities();
            if flags.record(it, &m) {
                converged = true;
                iterations = it + 1;
                break;
            }
        }
        let ex: Vec<usize> = (0..n).filter(|&k| flags.now[k]).collect();
        let (labels, exemplars) = if ex.is_empty() {
            (vec![NO_LABEL; n], Vec::new())
        } else {
            label(n, s, ex, precision)
        };
        Clustering {
            labels,
            exemplars,
            iterations,
            converged,
        }
    }
}

/// sklearn's labelling from the exemplars `ex` (not empty): assign, refine each cluster's
/// exemplar, assign again; labels numbered by ascending exemplar. Returns (labels, exemplars).
fn label(
    n: usize,
    s: &[f64],
    mut ex: Vec<usize>,
    precision: Precision,
) -> (Vec<usize>, Vec<usize>) {
    let c = assign(n, s, &ex);
    refine(n, s, &c, &mut ex, precision);
    let c = assign(n, s, &ex);
    let mut exemplars = ex.clone();
    exemplars.sort_unstable();
    exemplars.dedup();
    let labels = c
        .iter()
        .map(|&k| exemplars.binary_search(&ex[k]).unwrap_or(NO_LABEL))
        .collect();
    (labels, exemplars)
}

/// Refines each cluster's exemplar: the member with the largest summed similarity to the
/// members (sums over the rows, in member order; in f32 for f32 input, as numpy).
fn refine(n: usize, s: &[f64], c: &[usize], ex: &mut [usize], precision: Precision) {
    for (k, slot) in ex.iter_mut().enumerate() {
        let ii: Vec<usize> = (0..n).filter(|&i| c[i] == k).collect();
        let (mut best, mut arg) = (f64::NEG_INFINITY, 0);
        for &j in &ii {
            let sum = match precision {
                Precision::F64 => ii.iter().fold(0.0f64, |acc, &i| acc + s[i * n + j]),
                Precision::F32 => {
                    f64::from(ii.iter().fold(0.0f32, |acc, &i| acc + s[i * n + j] as f32))
                }
            };
            if sum > best {
                best = sum;
                arg = j;
            }
        }
        *slot = arg;
    }
}

/// `c = argmax(S[:, ex], axis=1); c[ex] = arange(K)`: each point's exemplar of highest
/// similarity (the first on ties), exemplars their own.
fn assign(n: usize, s: &[f64], ex: &[usize]) -> Vec<usize> {
    let mut c: Vec<usize> = (0..n)
        .map(|i| {
            let (mut best, mut arg) = (f64::NEG_INFINITY, 0);
            for (k, &e) in ex.iter().enumerate() {
                let v = s[i * n + e];
                if v > best {
                    best = v;
                    arg = k;
                }
            }
            arg
        })
        .collect();
    for (k, &e) in ex.iter().enumerate() {
        c[e] = k;
    }
    c
}
