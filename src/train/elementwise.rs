//! What the elementwise training kernels share (`shaders/train_common.wgsl`): one thread per
//! element over a folded 1D grid, one uniform ([`EltParams`]) for all of them, and the group
//! of an element under a GrOWL / tie layout. The kernels: [`relu`](super::relu),
//! [`sgd`](super::sgd), [`mask`](super::mask).

use crate::dispatch::{Grid, WORKGROUP_SIZE};
use crate::error::{Error, Result};
use crate::gpu::Gpu;
use crate::growl::GroupLayout;

crate::uniform_struct! {
    /// The uniform of every elementwise training kernel (`p` in `shaders/train_common.wgsl`).
    pub(super) struct EltParams {
        /// Elements (threads with work).
        len: u32,
        fold_x: u32,
        total_wg: u32,
        /// The group of element `e`: 0 rows (`e / inner`), 1 columns (`e % groups`), 2 conv
        /// input channels (`(e / inner) % groups`).
        group_kind: u32,
        inner: u32,
        groups: u32,
        /// 1 when the SGD step applies a group mask.
        has_mask: u32,
        pad: u32,
        /// SGD learning rate.
        lr: f32,
        /// SGD momentum.
        momentum: f32,
        /// SGD weight decay.
        weight_decay: f32,
        /// Mask update: the absolute group-norm threshold.
        threshold: f32,
    }
}

/// Declares one elementwise kernel: its module (`elementwise.wgsl`, `train_common.wgsl`, then
/// `shaders/<name>.wgsl`,
/// with [`EltParams`] generated) and its [`KernelDecl`](crate::dispatch::KernelDecl) (entry
/// `main`, bindings from the named bindings struct).
macro_rules! elementwise_kernel {
    ($(#[$meta:meta])* $kernel:ident, $module:ident, $name:literal, $bindings:ident) => {
        $crate::module!($module = $name, [$crate::train::elementwise::EltParams],
            parts: ["elementwise", "train_common", $name]);
        $crate::kernel!($(#[$meta])* pub(super) $kernel = $name, $module, $bindings);
    };
}
pub(super) use elementwise_kernel;

impl EltParams {
    /// The uniform and grid of `len` elements, with the groups of `layout` (none: each
    /// element its own group).
    pub(super) fn new(gpu: &Gpu, len: usize, layout: Option<GroupLayout>) -> Result<(Self, Grid)> {
        let len = u32::try_from(len)
            .map_err(|_| Error::shape(format!("{len} elements: at most 2^32 - 1")))?;
        let grid = Grid::for_items(gpu, u64::from(len), u64::from(WORKGROUP_SIZE))?;
        let (kind, inner, groups) = match layout {
            None => (0, 1, 1),
            Some(GroupLayout::Rows { cols, .. }) => (0, cols, 1),
            Some(GroupLayout::Columns { cols, .. }) => (1, 1, cols),
            Some(GroupLayout::ConvInChannels { c_in, khw, .. }) => (2, khw, c_in),
        };
        let to_u32 = |v: usize| {
            u32::try_from(v).map_err(|_| Error::shape(format!("layout extent {v} past u32")))
        };
        Ok((
            Self {
                len,
                fold_x: grid.fold_x(),
                total_wg: grid.total,
                group_kind: kind,
                inner: to_u32(inner.max(1))?,
                groups: to_u32(groups.max(1))?,
                ..Self::default()
            },
            grid,
        ))
    }
}

/// A u32 slice as the f32 words the crate's upload takes (bit for bit).
pub(super) fn as_words(v: &[u32]) -> Vec<f32> {
    v.iter().map(|&m| f32::from_bits(m)).collect()
}
