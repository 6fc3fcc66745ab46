//! GrOWL: the group ordered weighted L1 regulariser (Zhang et al., ICLR 2018) and its prox.
//!
//! `Omega_w(v) = sum_k w_k |v|_[k]` with `w_1 >= w_2 >= ... >= 0`; the OWL prox (also known as
//! the sorted-L1 or SLOPE prox) sorts magnitudes, subtracts the weights, runs a non-increasing
//! isotonic regression (pool adjacent violators), clips at zero and unsorts. The GrOWL prox
//! applies it to the norms of groups (rows, columns, conv input channels) and rescales each
//! group.
//!
//! On the GPU: [`OwlProx`] (vectors) and [`GrowlProx`] (tensors), recording into the caller's
//! encoder, with bounded work per invocation at any size. On the CPU: [`cpu`], the reference
//! twin and a fast fallback without a GPU (a radix sort of magnitudes, a linear stack PAV).
//! Both GrOWL paths return a [`GrowlOutput`].
//!
//! # Layout
//! - `mod.rs`: weight sequences, options, group layouts, the checks both sides share.
//! - `owl_prox.rs` / `owl_kernels.rs`: the OWL prox op and its kernels (`shaders/owl_*.wgsl`);
//!   twin [`cpu::owl_prox`].
//! - `growl_prox.rs` / `growl_kernels.rs`: the GrOWL prox op and its kernels
//!   (`shaders/growl_*.wgsl`); twin [`cpu::growl_prox`]. `windows.rs`: the tensor's
//!   `[outer][groups][inner]` view cut into binding-sized windows.
//! - `prox_plan.rs`: the in-place and out-of-place recording both plans share.
//!
//! # Numerical policies
//! - Accuracy is relative to each PAV block's own scale (the largest magnitude or weight among
//!   its ranks), over the whole normal f32 range: the GPU sums are block-scaled integers, each
//!   rank on a power-of-two grid 2^-28 below its own magnitude, so small values next to large
//!   ones keep their digits (see [`OwlProx::prox`]). GrOWL group norms are sums of squares
//!   scaled by powers of two, so they neither underflow nor overflow anywhere in the f32
//!   range; a norm past `f32::MAX` is an error (see [`GrowlProx::prox`]).
//! - GrOWL zeroes groups whose norm is below a threshold, [`GrowlOptions::zero_below`]: the
//!   paper's `f32::EPSILON` by default, `0.0` for tensors of small scale.
//! - Results are bitwise reproducible run to run (fixed reduction trees, integer sums).
//! - Subnormal values (below 1.18e-38 in magnitude) may be flushed to zero on the GPU (WGSL
//!   leaves denormals to the implementation); the CPU twins keep them.
//! - Non-finite input is refused by the host-slice calls; the `record` calls cannot check it.

pub mod cpu;
mod growl_kernels;
mod growl_prox;
mod owl_kernels;
mod owl_prox;
mod prox_plan;
mod windows;

pub(crate) use growl_kernels::KERNELS as GROWL_KERNELS;
pub use growl_prox::{GrowlPlan, GrowlProx};
pub(crate) use owl_kernels::KERNELS as OWL_KERNELS;
pub use owl_prox::{OwlPlan, OwlProx};

use crate::error::{check_len, Error, Result};

/// An OWL weight sequence, for `n` groups (1-based `k` below).
#[derive(Clone, Debug, PartialEq)]
pub enum Weights {
    /// OSCAR: `l1 + l2 * (n - k)`.
    Oscar {
        /// Constant part.
        l1: f32,
        /// Slope per rank.
        l2: f32,
    },
    /// Linear: `l1 + l2 * (n - k) / n`.
    Linear {
        /// Constant part.
        l1: f32,
        /// Total ramp height.
        l2: f32,
    },
    /// The paper's stairwise form: `l1 + l2 * (p - k)` on the top `p = floor(n * top)` ranks,
    /// `l1` after (the authors' code; `top` = 0.5 on MNIST, 0.1 on VGG).
    Stairwise {
        /// Flat part.
        l1: f32,
        /// Ramp slope on the top ranks.
        l2: f32,
        /// Fraction of ranks on the ramp, in [0, 1].
        top: f32,
    },
    /// The paper's MNIST form, `PLD` in its code (`reg_params_init` in `utils_OWL.py`): with
    /// `p = floor(n * transition) - 1` (computed in f64; 0 when `n * transition < 1`, where
    /// numpy would fail), rank `k` (0-based) has weight `l1 + l2 * x_k`, where `x` is numpy's
    /// `linspace(n - 1, 0, p)` on the first `p` ranks (`x_k = k * step + (n - 1)` with
    /// `step = -(n - 1) / (p - 1)`, the last exactly 0; `x_0 = n - 1` when `p = 1`) and 0
    /// after. Computed in f64 from the f32 `l1` and `l2` (as numpy promotes them), rounded to
    /// f32 once. The MNIST setting is `n = 784`, `transition = 0.5`: `p = 391`, a ramp from
    /// `l1 + 783 * l2` (180.345 for `l1 = 12`, `l2 = 0.215`) down to `l1` at rank 390. (The
    /// paper's `transition = 0`, the smallest layer's row count, has no meaning for one layer:
    /// use [`Weights::Custom`].)
    Pld {
        /// Flat part.
        l1: f32,
        /// Slope per linspace step of 1.
        l2: f32,
        /// Fraction of ranks on the ramp (plus one), in [0, 1].
        transition: f32,
    },
    /// Spike: `(b1 + b2, b2, ..., b2)` (group lasso plus a group-L_inf term).
    Spike {
        /// Extra weight of the largest group.
        b1: f32,
        /// Weight of every group.
        b2: f32,
    },
    /// Any non-negative, non-increasing sequence of length `n`.
    Custom(Vec<f32>),
}

impl Weights {
    /// The sequence for `n` groups, multiplied by the step size `eta` (the prox of
    /// `eta * Omega_w` is the prox of `Omega_{eta * w}`).
    ///
    /// # Errors
    /// [`Error::Shape`] when a weight is negative or not finite, the sequence increases, `eta`
    /// is negative or not finite, `top` is outside [0, 1], or a custom vector's length is not
    /// `n`.
    pub fn sequence(&self, n: usize, eta: f32) -> Result<Vec<f32>> {
        if !(eta.is_finite() && eta >= 0.0) {
            return Err(Error::shape(format!(
                "step size {eta} must be finite and >= 0"
            )));
        }
        if u32::try_from(n).is_err() {
            return Err(Error::shape(format!(
                "{n} weights: at most 2^32 - 1 are supported"
            )));
        }
        let nf = n as f32;
        let w: Vec<f32> = match self {
            Weights::Oscar { l1, l2 } => (1..=n).map(|k| l1 + l2 * (n - k) as f32).collect(),
            Weights::Linear { l1, l2 } => (1..=n).map(|k| l1 + l2 * (n - k) as f32 / nf).collect(),
            Weights::Stairwise { l1, l2, top } => {
                if !(0.0..=1.0).contains(top) {
                    return Err(Error::shape(format!(
                        "stairwise fraction {top} must be in [0, 1]"
                    )));
                }
                // The f32 product (as the paper's settings round), exact below 2^24 groups.
                let p = ((n as f64 * f64::from(*top)) as f32).floor() as usize;
                (1..=n)
                    .map(|k| {
                        if k <= p {
                            l1 + l2 * (p - k) as f32
                        } else {
                            *l1
                        }
                    })
                    .collect()
            }
            Weights::Pld { l1, l2, transition } => {
                if !(0.0..=1.0).contains(transition) {
                    return Err(Error::shape(format!(
                        "PLD transition {transition} must be in [0, 1]"
                    )));
                }
                pld(n, *l1, *l2, *transition)
            }
            Weights::Spike { b1, b2 } => {
                (0..n).map(|k| if k == 0 { b1 + b2 } else { *b2 }).collect()
            }
            Weights::Custom(w) => {
                check_len("weights", n, w)?;
                w.clone()
            }
        };
        let w: Vec<f32> = w.into_iter().map(|x| x * eta).collect();
        validate(&w)?;
        Ok(w)
    }
}

/// The paper's `PLD` sequence (see [`Weights::Pld`]), numpy's arithmetic in f64.
fn pld(n: usize, l1: f32, l2: f32, transition: f32) -> Vec<f32> {
    let (l1, l2) = (f64::from(l1), f64::from(l2));
    let p = ((n as f64 * f64::from(transition)).floor() - 1.0).max(0.0) as usize;
    let start = (n as f64) - 1.0;
    // numpy.linspace(start, 0, p): k * step + start, the last point exactly the stop.
    let step = (0.0 - start) / (p as f64 - 1.0);
    (0..n)
        .map(|k| {
            // Past the ramp, and its last point (the linspace's exact stop), 0.
            let x = if k >= p || (p > 1 && k == p - 1) {
                0.0
            } else if p == 1 {
                start
            } else {
                k as f64 * step + start
            };
            (l1 + l2 * x) as f32
        })
        .collect()
}

/// What the GrOWL prox returns, on the GPU ([`GrowlProx::prox`]) and the CPU
/// ([`cpu::growl_prox`]).
#[derive(Clone, Debug, PartialEq)]
pub struct GrowlOutput {
    /// The prox of the weights, same layout.
    pub weights: Vec<f32>,
    /// Each group's norm after the prox.
    pub norms: Vec<f32>,
    /// Whether each group is zero after the prox.
    pub zero: Vec<bool>,
    /// Each group's PAV block id (candidate tie groups for the retraining phase).
    pub blocks: Vec<u32>,
}

/// The OWL prox's input checks, shared by the CPU twin and the GPU path: one weight per
/// element, valid weights ([`validate`]), finite input.
fn check_owl_input(v: &[f32], w: &[f32]) -> Result<()> {
    check_len("weights", v.len(), w)?;
    if u32::try_from(v.len()).is_err() {
        return Err(Error::shape(format!(
            "{} elements: the OWL prox indexes with u32 (at most 2^32 - 1)",
            v.len()
        )));
    }
    validate(w)?;
    if let Some(i) = v.iter().position(|x| !x.is_finite()) {
        return Err(Error::shape(format!(
            "input {i} is {}: the OWL prox needs finite input",
            v[i]
        )));
    }
    Ok(())
}

/// Checks that `w` is finite, non-negative and non-increasing.
///
/// # Errors
/// [`Error::Shape`] naming the first offending index.
pub fn validate(w: &[f32]) -> Result<()> {
    for (k, &x) in w.iter().enumerate() {
        if !(x.is_finite() && x >= 0.0) {
            return Err(Error::shape(format!(
                "OWL weight {k} is {x}: weights must be finite and non-negative"
            )));
        }
        if k > 0 && x > w[k - 1] {
            return Err(Error::shape(format!(
                "OWL weights must be non-increasing: w[{k}] = {x} > w[{}] = {}",
                k - 1,
                w[k - 1]
            )));
        }
    }
    Ok(())
}

/// Options of the GrOWL prox, the same for the GPU ([`GrowlProx::plan_with`],
/// [`GrowlProx::prox_with`]) and the CPU twin ([`cpu::growl_prox_with`]).
#[derive(Clone, Copy, Debug, PartialEq)]
pub struct GrowlOptions {
    /// Groups whose norm is below this are zero: they enter the OWL prox with norm 0, so they
    /// come out zero whatever the weights (and are never divided by). The default is the
    /// paper's absolute `f32::EPSILON` (about 1.19e-7), which suits weights of order one but
    /// zeroes every group of a tensor of small scale; `0.0` zeroes only groups that are
    /// exactly zero (or whose norm a GPU flushes to zero as a subnormal). Must be finite and
    /// non-negative.
    pub zero_below: f32,
}

impl Default for GrowlOptions {
    fn default() -> Self {
        Self {
            zero_below: f32::EPSILON,
        }
    }
}

impl GrowlOptions {
    /// The options with groups below `zero_below` zeroed.
    pub fn zero_below(zero_below: f32) -> Self {
        Self { zero_below }
    }

    /// [`Error::Shape`] unless the threshold is finite and non-negative.
    pub(crate) fn check(&self) -> Result<()> {
        let t = self.zero_below;
        if t.is_finite() && t >= 0.0 {
            Ok(())
        } else {
            Err(Error::shape(format!(
                "GrOWL zero threshold {t} must be finite and >= 0"
            )))
        }
    }
}

/// [`Error::Shape`] naming the first non-finite element of a GrOWL tensor.
pub(crate) fn check_matrix(matrix: &[f32]) -> Result<()> {
    match matrix.iter().position(|x| !x.is_finite()) {
        Some(i) => Err(Error::shape(format!(
            "matrix element {i} is {}: the GrOWL prox needs finite input",
            matrix[i]
        ))),
        None => Ok(()),
    }
}

/// The GrOWL norms of groups with sums of squares `squares` (f64), with the threshold applied;
/// [`Error::Shape`] when a norm is not finite in f32 (the OWL prox needs f32 input).
/// `margin` leaves room below `f32::MAX` for the GPU's rounding on the way up.
pub(crate) fn group_norms(squares: &[f64], options: GrowlOptions, margin: f64) -> Result<Vec<f32>> {
    options.check()?;
    let limit = f64::from(f32::MAX) * (1.0 - margin);
    squares
        .iter()
        .enumerate()
        .map(|(g, &q)| {
            let r = q.sqrt();
            if r >= limit {
                return Err(Error::shape(format!(
                    "group {g}'s norm ({r:e}) overflows f32: scale the tensor down"
                )));
            }
            let r = r as f32;
            Ok(if r < options.zero_below { 0.0 } else { r })
        })
        .collect()
}

/// Which slices of a weight matrix are the groups of GrOWL.
#[derive(Clone, Copy, Debug, PartialEq, Eq, Hash)]
pub enum GroupLayout {
    /// Rows of a row-major `rows x cols` matrix (the paper's `[in, out]` layout: one group per
    /// input unit).
    Rows {
        /// Groups.
        rows: usize,
        /// Elements per group.
        cols: usize,
    },
    /// Columns of a row-major `rows x cols` matrix (`[out, in]` layouts, PyTorch style).
    Columns {
        /// Rows (outputs).
        rows: usize,
        /// Groups (inputs).
        cols: usize,
    },
    /// Input channels of a conv kernel `[c_out, c_in, kh, kw]`: one group per input channel.
    ConvInChannels {
        /// Output channels.
        c_out: usize,
        /// Input channels (groups).
        c_in: usize,
        /// Kernel height times width.
        khw: usize,
    },
}

impl GroupLayout {
    /// Number of groups.
    pub fn groups(&self) -> usize {
        match *self {
            GroupLayout::Rows { rows, .. } => rows,
            GroupLayout::Columns { cols, .. } => cols,
            GroupLayout::ConvInChannels { c_in, .. } => c_in,
        }
    }

    /// Elements of the whole tensor, or [`Error::Shape`] when they overflow `usize` (where
    /// [`GroupLayout::len`] saturates).
    ///
    /// # Errors
    /// [`Error::Shape`] naming the layout.
    pub fn checked_len(&self) -> Result<usize> {
        match *self {
            GroupLayout::Rows { rows, cols } | GroupLayout::Columns { rows, cols } => {
                rows.checked_mul(cols)
            }
            GroupLayout::ConvInChannels { c_out, c_in, khw } => {
                c_out.checked_mul(c_in).and_then(|n| n.checked_mul(khw))
            }
        }
        .ok_or_else(|| {
            Error::shape(format!(
                "{self:?} has more elements than usize holds: no tensor can match it"
            ))
        })
    }

    /// Elements of the whole tensor (saturating at `usize::MAX`; see
    /// [`GroupLayout::checked_len`]).
    pub fn len(&self) -> usize {
        match *self {
            GroupLayout::Rows { rows, cols } | GroupLayout::Columns { rows, cols } => {
                rows.saturating_mul(cols)
            }
            GroupLayout::ConvInChannels { c_out, c_in, khw } => {
                c_out.saturating_mul(c_in).saturating_mul(khw)
            }
        }
    }

    /// Whether the tensor is empty.
    pub fn is_empty(&self) -> bool {
        self.len() == 0
    }

    /// The group of element `e` (meaningful for `e < self.len()`; 0 for an empty layout).
    pub fn group_of(&self, e: usize) -> usize {
        match *self {
            GroupLayout::Rows { cols, .. } => e.checked_div(cols),
            GroupLayout::Columns { cols, .. } => e.checked_rem(cols),
            GroupLayout::ConvInChannels { c_in, khw, .. } => {
                e.checked_div(khw).and_then(|r| r.checked_rem(c_in))
            }
        }
        .unwrap_or(0)
    }
}
