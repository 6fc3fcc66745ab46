//! The paper's similarity of weight groups on the GPU: `S_ij = <w_i, w_j> / max(|w_i|^2,
//! |w_j|^2)`, as the gram matrix `G = U U^T` of the listed groups (the conv GEMM, through
//! [`crate::train::LinearPlan`]) plus a scaling kernel (`shaders/share_similarity_scale.wgsl`).
//!
//! Layout: the tensor is cut into groups by a [`GroupLayout`] as in [`super::discover`]; the
//! listed groups are gathered on the host into an `m x g` row-major matrix (a group's elements
//! in tensor order), each row scaled by a power of two so that its norm lies in `[0.5, 2)`
//! (exact; `S` does not change), so neither the gram matrix nor the scaling overflows or
//! underflows, whatever the weights' magnitudes (any finite f32). The result is `m x m`
//! row-major f32 (`m` = the number of listed groups), dimensionless, symmetric up to rounding,
//! 1 on the diagonal exactly, in `[-1, 1]` up to rounding.
//!
//! Accuracy: the gram matrix is summed in f32 over the group's `g` elements by the GEMM (a
//! fixed order: bitwise reproducible run to run on one device), so entries agree with the f64
//! twin [`super::discover::similarity`] to about `g * 2^-24` relative to the larger group's
//! squared norm. Elements of a group smaller than `2^-126` times its norm are flushed.

use crate::buffer;
use crate::conv::Conv2d;
use crate::dispatch::{self, whole, Grid, KernelDecl};
use crate::error::{check_len, Error, Result};
use crate::gpu::Gpu;
use crate::growl::GroupLayout;
use crate::train::{Linear, LinearShape};

crate::uniform_struct! {
    /// The uniform block of `shaders/share_similarity_scale.wgsl`.
    struct SimilarityParams {
        m: u32,
        len: u32,
        fold_x: u32,
        _pad: u32,
    }
}

crate::module!(SIMILARITY = "share_similarity_scale", [SimilarityParams]);

crate::bindings! {
    /// The scaling's buffers: the gram matrix, the groups' exponents, the similarity.
    struct SimilarityBindings {
        p @ 0: uniform(SimilarityParams),
        gram @ 1: read,
        exps @ 2: read,
        s @ 3: read_write,
    }
}

crate::kernel!(
    SIMILARITY_SCALE = "share_similarity_scale",
    SIMILARITY,
    SimilarityBindings
);

/// The similarity's kernels, for the kernel table.
pub(crate) static KERNELS: &[&KernelDecl] = &[&SIMILARITY_SCALE];

/// The paper's similarity on one device: the conv pipelines (for the gram GEMM) and the
/// scaling kernel. Build once; cheap to clone.
#[derive(Debug, Clone)]
pub struct Similarity {
    gpu: Gpu,
    linear: Linear,
}

impl Similarity {
    /// Compiles the pipelines (the conv ones through [`Conv2d::new`]).
    ///
    /// # Errors
    /// Errors captured while creating the pipelines.
    pub fn new(gpu: &Gpu) -> Result<Self> {
        Self::with_conv(&Conv2d::new(gpu)?)
    }

    /// On the pipelines of an existing [`Conv2d`] (no second compile).
    ///
    /// # Errors
    /// Errors captured while creating the scaling pipeline.
    pub fn with_conv(conv: &Conv2d) -> Result<Self> {
        let gpu = conv.gpu().clone();
        gpu.scoped(|| {
            gpu.kernel(&SIMILARITY_SCALE, 0);
            Ok(())
        })?;
        Ok(Self {
            linear: Linear::new(conv),
            gpu,
        })
    }

    /// The similarity of the listed groups of `w` (see the module docs): `m x m` row-major
    /// with `m = groups.len()`, entry `(a, b)` for groups `groups[a]` and `groups[b]`. Every
    /// listed group must be nonzero (exclude zero groups first, as tie discovery does).
    ///
    /// # Errors
    /// [`Error::LengthMismatch`] when `w` does not have `layout.len()` elements;
    /// [`Error::Shape`] for a group index out of range, a zero group, a non-finite weight in a
    /// listed group, or sizes past u32; [`Error::LimitExceeded`] when `m x m` values do not fit
    /// one storage binding; recording and readback errors.
    pub async fn similarity(
        &self,
        layout: GroupLayout,
        w: &[f32],
        groups: &[usize],
    ) -> Result<Vec<f32>> {
        check_len("weights", layout.len(), w)?;
        let m = groups.len();
        if m == 0 {
            return Ok(Vec::new());
        }
        let (rows, exps, g) = gather_scaled(layout, w, groups)?;
        let len = (m as u64)
            .checked_mul(m as u64)
            .filter(|&l| l <= u64::from(u32::MAX))
            .ok_or_else(|| Error::shape(format!("{m} groups: m x m is past u32")))?;
        dispatch::check_binding_size(&self.gpu, "similarity", len * 4)?;
        let to_u32 = |v: usize| {
            u32::try_from(v).map_err(|_| Error::shape(format!("extent {v} does not fit u32")))
        };
        let shape = LinearShape::new(to_u32(m)?, to_u32(g)?, to_u32(m)?).with_bias(false);
        let plan = self.linear.plan(shape)?;
        let grid = Grid::for_items(&self.gpu, len, u64::from(dispatch::WORKGROUP_SIZE))?;
        let params = SimilarityParams {
            m: to_u32(m)?,
            len: len as u32,
            fold_x: grid.fold_x(),
            _pad: 0,
        };
        let gpu = &self.gpu;
        let s = dispatch::record_and_submit(gpu, |enc| {
            let u = buffer::upload(gpu, "similarity rows", &rows);
            let e: Vec<f32> = exps.iter().map(|&x| f32::from_bits(x as u32)).collect();
            let eb = buffer::upload(gpu, "similarity exponents", &e);
            let gram = buffer::zeros(gpu, "similarity gram", len as usize);
            let s = buffer::zeros(gpu, "similarity", len as usize);
            plan.record_forward(enc, &u, &u, None, &gram)?;
            let ub = dispatch::uniform(gpu, "similarity params", &params);
            dispatch::record_checked(gpu, enc, |rec| {
                let k = gpu.kernel(&SIMILARITY_SCALE, 0);
                let b = SimilarityBindings {
                    p: whole(&ub),
                    gram: whole(&gram),
                    exps: whole(&eb),
                    s: whole(&s),
                };
                k.run(gpu.device(), rec, &b, grid);
                Ok(())
            })?;
            Ok(s)
        })
        .await?;
        buffer::read_back(gpu, &s, len as usize).await
    }

    crate::blocking_calls! {
        /// Blocking [`Similarity::similarity`] (native only).
        pub fn similarity_blocking(
            &self,
            layout: GroupLayout,
            w: &[f32],
            groups: &[usize],
        ) -> Result<Vec<f32>> => similarity;
    }
}

/// The listed groups as rows scaled by `2^-e` (norm in `[0.5, 2)`), their exponents `e`, and
/// the row length.
fn gather_scaled(
    layout: GroupLayout,
    w: &[f32],
    groups: &[usize],
) -> Result<(Vec<f32>, Vec<i32>, usize)> {
    let n = layout.groups();
    let g = layout.len().checked_div(n).unwrap_or(0);
    let (outer, inner) = match layout {
        GroupLayout::Rows { cols, .. } => (1, cols),
        GroupLayout::Columns { rows, .. } => (rows, 1),
        GroupLayout::ConvInChannels { c_out, khw, .. } => (c_out, khw),
    };
    let mut rows = vec![0.0f32; groups.len() * g];
    let mut exps = Vec::with_capacity(groups.len());
    for (i, &grp) in groups.iter().enumerate() {
        if grp >= n {
            return Err(Error::shape(format!(
                "group {grp} is out of range: the layout has {n} groups"
            )));
        }
        let row = &mut rows[i * g..(i + 1) * g];
        for o in 0..outer {
            for k in 0..inner {
                let at = (o * n + grp) * inner + k;
                let x = w[at];
                if !x.is_finite() {
                    return Err(Error::shape(format!(
                        "weight {at} (group {grp}) is {x}: the similarity needs finite weights"
                    )));
                }
                row[o * inner + k] = x;
            }
        }
        // The norm in f64 (no overflow for finite f32), then its power-of-two exponent.
        let norm = row
            .iter()
            .map(|&x| f64::from(x) * f64::from(x))
            .sum::<f64>()
            .sqrt();
        if norm == 0.0 {
            return Err(Error::shape(format!(
                "group {grp} is zero: the similarity is defined on nonzero groups"
            )));
        }
        // norm = f 2^e with f in [0.5, 1): the row scaled by 2^-e has norm in [0.5, 1).
        let e = norm.log2().floor() as i32 + 1;
        let scale = 2f64.powi(-e);
        for x in row.iter_mut() {
            *x = (f64::from(*x) * scale) as f32;
        }
        exps.push(e);
    }
    Ok((rows, exps, g))
}
