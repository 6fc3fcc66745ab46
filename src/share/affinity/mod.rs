//! Affinity propagation (Frey & Dueck, 2007), step for step as scikit-learn's
//! `sklearn.cluster._affinity_propagation` (version 1.x) computes it.
//!
//! Input: a dense similarity matrix `S`, row-major `n x n` (`s[i * n + k]` is how well `k`
//! suits `i` as its exemplar), f64 ([`AffinityPropagation::fit`]) or f32
//! ([`AffinityPropagation::fit_f32`]). Its diagonal is replaced by the preference. Output: a
//! [`Clustering`] with sklearn's labels (`0..k`, numbered by ascending exemplar index),
//! exemplar indices, the iteration count and whether it converged.
//!
//! The algorithm, in sklearn's order: preference on the diagonal; the tie-breaking noise (see
//! [`Noise`]); then per iteration the responsibilities `R` (from the best and second-best
//! `A + S` of each row, damped), the availabilities `A` (column sums of `max(R, 0)` with the
//! diagonal kept, damped), and the exemplar flags `diag(A) + diag(R) > 0`. It converges when
//! every point's flag has stayed the same over the last `convergence_iter` iterations (checked
//! from iteration `convergence_iter` on) and there is at least one exemplar. Points then join
//! the exemplar of highest similarity, each cluster's exemplar is refined to the member with
//! the largest summed similarity to the cluster, and points are assigned again.
//!
//! Special cases as in sklearn: one point, or all off-diagonal similarities equal and all
//! preferences equal, give (without iterating) one cluster per point when the preference
//! exceeds the similarity and one cluster otherwise. A run that ends without an exemplar gives
//! no clusters and every label [`NO_LABEL`] (sklearn's -1). An empty matrix gives an empty
//! clustering.
//!
//! Arithmetic follows numpy's: the same operations in the same order (sums over a column added
//! row by row, `argmax` taking the first maximum), in f64 like sklearn's messages. With
//! [`Noise::Sklearn`] and the same seed the result is what sklearn computes with that
//! `random_state`; the tests check it against scikit-learn on fixed matrices.
//!
//! Layout: this file holds the settings, the checks and the special cases; `messages.rs` the
//! message passing, the convergence test and the labelling; `noise.rs` sklearn's noise with
//! numpy's legacy normals.

mod messages;
mod noise;

use crate::error::{Error, Result};
use noise::add_noise;

/// The label of a point when affinity propagation ends without exemplars (sklearn's -1).
pub const NO_LABEL: usize = usize::MAX;

/// The preference: the diagonal of `S` (how much each point wants to be an exemplar; larger
/// values give more clusters).
#[derive(Clone, Debug, PartialEq)]
pub enum Preference {
    /// The median of all `n * n` input similarities, diagonal included (sklearn's default,
    /// computed as numpy's `median`: the mean of the two middle values for an even count).
    Median,
    /// One value for every point (the paper: 0.6 on MNIST, 0.8 on VGG).
    Scalar(f64),
    /// One value per point (`n` values).
    PerPoint(Vec<f64>),
}

/// How ties in the similarities are broken.
///
/// sklearn adds `(eps * S + tiny * 100) * N(0, 1)` to `S` (after placing the preference),
/// with `eps` and `tiny` of the input's float type and the normals drawn, row-major, from a
/// `numpy.random.RandomState`. Without it, exactly tied similarities (duplicated points) can
/// keep the messages of tied points equal for ever.
#[derive(Clone, Copy, Debug, PartialEq, Eq, Hash)]
pub enum Noise {
    /// sklearn's noise term, with the normals of `numpy.random.RandomState(seed)` reproduced
    /// exactly (MT19937 seeded as numpy's legacy seeding, the polar Box-Muller method of its
    /// `standard_normal`). `seed: 0` is sklearn's `random_state=0`, and what sklearn 0.19 (the
    /// paper's) always used. Deterministic: the same matrix gives the same clustering on
    /// every run and machine (the normals use `ln` and `sqrt`; a platform whose `ln` is off by
    /// an ulp moves the noise, about 1e-16 relative, by that much).
    Sklearn {
        /// The `RandomState` seed.
        seed: u32,
    },
    /// No noise: `S` is used as given. Ties then go, as in numpy's `argmax`, to the lowest
    /// index. This is sklearn's algorithm with the noise term set to zero: results agree with
    /// sklearn's wherever the noise does not decide them (exactly tied similarities can
    /// differ).
    Off,
}

impl Default for Noise {
    fn default() -> Self {
        Noise::Sklearn { seed: 0 }
    }
}

/// Settings of affinity propagation. [`Default`] is sklearn's: damping 0.5, 200 iterations at
/// most, convergence after 15 unchanged iterations, the median preference, the noise of
/// `random_state=0`.
#[derive(Clone, Debug, PartialEq)]
pub struct AffinityPropagation {
    /// Damping factor in `[0.5, 1)`: each message is `damping * old + (1 - damping) * new`.
    pub damping: f64,
    /// Iterations at most (>= 1).
    pub max_iter: usize,
    /// Iterations over which the exemplar flags must not change to converge (>= 1).
    pub convergence_iter: usize,
    /// The diagonal of `S`.
    pub preference: Preference,
    /// Tie-breaking noise.
    pub noise: Noise,
}

impl Default for AffinityPropagation {
    fn default() -> Self {
        Self {
            damping: 0.5,
            max_iter: 200,
            convergence_iter: 15,
            preference: Preference::Median,
            noise: Noise::default(),
        }
    }
}

/// The result of affinity propagation.
#[derive(Clone, Debug, PartialEq, Eq)]
pub struct Clustering {
    /// The cluster of each point, `0..exemplars.len()` (clusters numbered by ascending
    /// exemplar index), or [`NO_LABEL`] for every point when there is no exemplar.
    pub labels: Vec<usize>,
    /// The exemplar of each cluster, ascending (sklearn's `cluster_centers_indices_`).
    pub exemplars: Vec<usize>,
    /// Iterations run (sklearn's `n_iter_`; 0 for the special cases and an empty matrix).
    pub iterations: usize,
    /// Whether the exemplar flags settled within `max_iter` iterations (true for the special
    /// cases that do not iterate). sklearn warns where this is false.
    pub converged: bool,
}

impl Clustering {
    /// Number of clusters.
    pub fn clusters(&self) -> usize {
        self.exemplars.len()
    }

    /// The members of each cluster, ascending.
    pub fn members(&self) -> Vec<Vec<usize>> {
        let mut out = vec![Vec::new(); self.exemplars.len()];
        for (i, &l) in self.labels.iter().enumerate() {
            if l != NO_LABEL {
                out[l].push(i);
            }
        }
        out
    }
}

/// The float type the input came in: it decides sklearn's noise scale, the rounding of the
/// preference written into `S`, and the precision of the exemplar refinement's sums.
#[derive(Clone, Copy, PartialEq, Eq)]
enum Precision {
    F64,
    F32,
}

impl AffinityPropagation {
    /// sklearn's defaults with the given preference.
    pub fn with_preference(preference: Preference) -> Self {
        Self {
            preference,
            ..Self::default()
        }
    }

    /// Clusters the `n x n` row-major similarity matrix `s` (f64).
    ///
    /// # Errors
    /// [`Error::LengthMismatch`] when `s` has not `n * n` elements, or a per-point preference
    /// not `n`; [`Error::Shape`] for a non-finite similarity or preference, a damping outside
    /// `[0.5, 1)`, or `max_iter` or `convergence_iter` of 0.
    pub fn fit(&self, n: usize, s: &[f64]) -> Result<Clustering> {
        self.check(n, s.len())?;
        if let Some(i) = s.iter().position(|v| !v.is_finite()) {
            return Err(non_finite(n, i, s[i]));
        }
        self.run(n, s.to_vec(), Precision::F64)
    }

    /// Clusters an f32 similarity matrix as sklearn does an f32 array: the messages in f64,
    /// but the preference rounded to f32 on the diagonal, the noise at f32's scale and stored
    /// in f32, and the refinement's sums in f32.
    ///
    /// # Errors
    /// As [`AffinityPropagation::fit`].
    pub fn fit_f32(&self, n: usize, s: &[f32]) -> Result<Clustering> {
        self.check(n, s.len())?;
        if let Some(i) = s.iter().position(|v| !v.is_finite()) {
            return Err(non_finite(n, i, f64::from(s[i])));
        }
        self.run(n, s.iter().map(|&v| f64::from(v)).collect(), Precision::F32)
    }

    fn check(&self, n: usize, len: usize) -> Result<()> {
        let nn = n
            .checked_mul(n)
            .ok_or_else(|| Error::shape(format!("a {n} x {n} similarity matrix is too large")))?;
        if len != nn {
            return Err(Error::LengthMismatch {
                name: "similarity matrix",
                expected: nn,
                actual: len,
            });
        }
        if !(self.damping >= 0.5 && self.damping < 1.0) {
            return Err(Error::shape(format!(
                "damping {} must be in [0.5, 1)",
                self.damping
            )));
        }
        if self.max_iter == 0 || self.convergence_iter == 0 {
            return Err(Error::shape(format!(
                "max_iter ({}) and convergence_iter ({}) must be at least 1",
                self.max_iter, self.convergence_iter
            )));
        }
        match &self.preference {
            Preference::Median => {}
            Preference::Scalar(p) => check_pref(0, *p)?,
            Preference::PerPoint(p) => {
                if p.len() != n {
                    return Err(Error::LengthMismatch {
                        name: "preferences",
                        expected: n,
                        actual: p.len(),
                    });
                }
                for (i, &v) in p.iter().enumerate() {
                    check_pref(i, v)?;
                }
            }
        }
        Ok(())
    }

    /// The preference of each point, as sklearn holds it before writing it into `S`.
    fn preferences(&self, n: usize, s: &[f64], precision: Precision) -> Vec<f64> {
        match &self.preference {
            Preference::Median => vec![median(s, precision); n],
            Preference::Scalar(p) => vec![*p; n],
            Preference::PerPoint(p) => p.clone(),
        }
    }

    fn run(&self, n: usize, mut s: Vec<f64>, precision: Precision) -> Result<Clustering> {
        if n == 0 {
            return Ok(Clustering {
                labels: Vec::new(),
                exemplars: Vec::new(),
                iterations: 0,
                converged: true,
            });
        }
        let pref = self.preferences(n, &s, precision);
        if n == 1 || equal_similarities_and_preferences(n, &s, &pref) {
            // sklearn: `preference.flat[0] > S.flat[n - 1]` (an off-diagonal entry for n > 1).
            let (labels, exemplars) = if pref[0] > s[n - 1] {
                ((0..n).collect(), (0..n).collect())
            } else {
                (vec![0; n], vec![0])
            };
            return Ok(Clustering {
                labels,
                exemplars,
                iterations: 0,
                converged: true,
            });
        }
        for (i, &p) in pref.iter().enumerate() {
            s[i * n + i] = match precision {
                Precision::F64 => p,
                Precision::F32 => f64::from(p as f32),
            };
        }
        if let Noise::Sklearn { seed } = self.noise {
            add_noise(&mut s, seed, precision);
        }
        Ok(self.iterate(n, &s, precision))
    }
}

fn non_finite(n: usize, i: usize, v: f64) -> Error {
    Error::shape(format!(
        "similarity ({}, {}) is {v}: affinity propagation needs finite similarities",
        i / n.max(1),
        i % n.max(1)
    ))
}

fn check_pref(i: usize, p: f64) -> Result<()> {
    if !p.is_finite() {
        return Err(Error::shape(format!(
            "preference {i} is {p}: preferences must be finite"
        )));
    }
    Ok(())
}

/// sklearn's `_equal_similarities_and_preferences`: all preferences equal and all
/// off-diagonal similarities equal.
fn equal_similarities_and_preferences(n: usize, s: &[f64], pref: &[f64]) -> bool {
    if pref.iter().any(|&p| p != pref[0]) {
        return false;
    }
    let first = s[1]; // n >= 2 here: (0, 1) is off the diagonal.
    (0..n).all(|i| (0..n).all(|k| i == k || s[i * n + k] == first))
}

/// numpy's `median` of all entries: the middle value, or the mean of the two middle values
/// (`(a + b) / 2` in the input's precision).
fn median(s: &[f64], precision: Precision) -> f64 {
    let mut v = s.to_vec();
    v.sort_unstable_by(f64::total_cmp);
    let m = v.len() / 2;
    if v.len() % 2 == 1 {
        v[m]
    } else {
        match precision {
            Precision::F64 => (v[m - 1] + v[m]) / 2.0,
            Precision::F32 => f64::from((v[m - 1] as f32 + v[m] as f32) / 2.0),
        }
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn median_as_numpy() {
        assert_eq!(median(&[3.0, 1.0, 2.0], Precision::F64), 2.0);
        assert_eq!(median(&[4.0, 1.0, 2.0, 3.0], Precision::F64), 2.5);
        // f32: the two middle values added in f32 (0.1f32 + 0.2f32 rounds there).
        let (x, y) = (f64::from(0.1f32), f64::from(0.2f32));
        assert_eq!(
            median(&[x, y], Precision::F32),
            f64::from((0.1f32 + 0.2f32) / 2.0)
        );
    }

    #[test]
    fn no_exemplar_after_one_iteration() {
        // A very low preference: after one iteration no point is an exemplar.
        let s = [0.0, -1.0, -2.0, -1.0, 0.0, -1.5, -2.0, -1.5, 0.0];
        let ap = AffinityPropagation {
            max_iter: 1,
            preference: Preference::Scalar(-100.0),
            ..AffinityPropagation::default()
        };
        let c = ap.fit(3, &s).unwrap();
        assert!(c.exemplars.is_empty());
        assert_eq!(c.labels, vec![NO_LABEL; 3]);
        assert_eq!((c.iterations, c.converged), (1, false));
    }
}
