//! Staging, a policy of scalar plans: whether the members that lie scattered over a large
//! tensor are first copied, chunk by chunk, into a staged copy in group order ([`Staging`]),
//! the staged layout (`stage_slots`) and the staging pass (`tie_stage`, entry `stage` of
//! `shaders/tie_broadcast_quads.wgsl`).

use super::broadcast::{QuadBindings, QuadParams, QUADS_PER_THREAD, TIE_BROADCAST_QUADS_MODULE};
use crate::dispatch::{self, Grid, WORKGROUP_SIZE};
use crate::error::Result;
use crate::gpu::Gpu;

/// Parameters per staging chunk (`STAGE_CHUNK` in WGSL): 64 KiB of f32, so the staging gather
/// stays in cache; a multiple of 4.
pub(crate) const STAGE_CHUNK: u32 = 1 << 14;
/// Parameters (of one binding window) from which [`Staging::Auto`] stages a scattered scalar
/// map: 4 MiB of f32, a guess between the sizes measured (0.8 MB, in cache: staging slower;
/// 40 MB: faster).
pub const STAGE_MIN_PARAMS: u32 = 1 << 20;

crate::kernel! {
    /// The staging gather: staged quad q takes the parameters its slots' offsets name inside its
    /// chunk (bound as `ids`) from the source tensor (`values`) into the staged copy (`dst`).
    pub(super) TIE_STAGE = "tie_stage", TIE_BROADCAST_QUADS_MODULE, QuadBindings, entry: "stage"
}

/// How a scalar plan reads members that lie scattered over the tensor.
///
/// The scalar reduction reads the members in group order, so a random tie map makes it
/// gather single floats from all over the tensor, and most loads miss the cache. A staged
/// plan first copies the tensor, chunk by chunk of 2^14 parameters (64 KiB), into a scratch
/// copy in which each chunk's members stand in group order (a gather that stays inside one
/// cached chunk); the reduction then gathers from the staged copy, where the members a
/// stretch of the group order needs from one chunk are neighbours. One more pass over the
/// tensor, far fewer cache misses.
///
/// Staging never changes a result: the reduction adds the same values in the same order, so
/// staged and unstaged plans give bitwise identical sums. A staged plan holds 8 more bytes per
/// parameter (the staging offsets and the staged copy; windows of one plan share one copy).
///
/// Measured on lavapipe (2 cores, P = 1e7, 1e5 groups of random members or power-law sizes,
/// the same run, three runs): the staged reduction takes 0.73-1.04 of the unstaged one's
/// time; at P = 2e5 (800 KB, in cache) it takes 1.4-1.8 times as long. It has not been measured on
/// a hardware GPU, whose caches and gathers differ, so [`Staging::Auto`] stages only on CPU
/// adapters; [`Staging::Always`] tries it anywhere.
#[derive(Clone, Copy, Debug, Default, PartialEq, Eq, Hash)]
#[non_exhaustive]
pub enum Staging {
    /// Stage on CPU adapters (software drivers) when a tensor (each binding window of one)
    /// has at least [`STAGE_MIN_PARAMS`] parameters, at least a quarter of them are tied,
    /// and more than a quarter of the members, in group order, jump more than one 64-byte
    /// line from the one before.
    #[default]
    Auto,
    /// Stage every scalar plan that reads its members through their indices, unless they are
    /// in tensor order already (plans that read them in place, groups in stretches of
    /// neighbouring parameters, never stage).
    Always,
    /// Never stage.
    Never,
}

impl Staging {
    /// Whether a scalar plan on `gpu` of `len` parameters whose members, in group order, are
    /// the parameters `perm` is staged.
    pub(super) fn applies(self, gpu: &Gpu, len: u32, perm: &[u32]) -> bool {
        // Members already in tensor order (the identity included) gain nothing.
        let in_order = || perm.windows(2).all(|w| w[0] < w[1]);
        match self {
            Staging::Never => false,
            Staging::Always => !in_order(),
            Staging::Auto => {
                let cpu = gpu.adapter_info().device_type == wgpu::DeviceType::Cpu;
                let jumps = || {
                    perm.windows(2)
                        .filter(|w| (w[1] / 16).abs_diff(w[0] / 16) > 1)
                        .count()
                };
                cpu && len >= STAGE_MIN_PARAMS
                    && perm.len() as u64 * 4 >= u64::from(len)
                    && jumps() * 4 > perm.len()
            }
        }
    }
}

/// The staging pass of a scalar plan (see [`Staging`]).
#[derive(Debug)]
pub(super) struct Staged {
    /// Per staged slot, four per element: the offset inside its chunk of the parameter it
    /// takes.
    pub(super) offsets: wgpu::Buffer,
    /// The staged copy, whole quads.
    pub(super) values: wgpu::Buffer,
    pub(super) uniform: wgpu::Buffer,
    pub(super) grid: Grid,
}

impl Staged {
    /// The staging of a scalar plan of `len` parameters whose members, in group order, are the
    /// parameters `perm`: returns the members' slots in the staged copy (quad padded, for
    /// `at`) and the pass. `shared`: an earlier window's staged copy, reused when large enough.
    pub(super) fn plan(
        gpu: &Gpu,
        len: u32,
        perm: &[u32],
        shared: Option<&wgpu::Buffer>,
    ) -> Result<(Vec<u32>, Self)> {
        let (slots, chunk_offsets) = stage_slots(len, perm);
        let quads = len.div_ceil(4);
        let grid = Grid::for_items(
            gpu,
            u64::from(quads),
            u64::from(QUADS_PER_THREAD * WORKGROUP_SIZE),
        )?;
        let params = QuadParams {
            quads,
            fold_x: grid.fold_x(),
            total_wg: grid.total,
            stride: grid.total * WORKGROUP_SIZE,
            ..Default::default()
        };
        let bytes = chunk_offsets.len() as u64 * 4;
        let staged = Staged {
            offsets: dispatch::storage_init(
                gpu,
                "tie staging offsets",
                &chunk_offsets,
                wgpu::BufferUsages::empty(),
            ),
            // A window reuses the first window's copy when it is large enough.
            values: match shared {
                Some(copy) if copy.size() >= bytes => copy.clone(),
                _ => {
                    dispatch::scratch(gpu, "tie staged values", bytes, wgpu::BufferUsages::empty())
                }
            },
            uniform: dispatch::uniform(gpu, "tie staging", &params),
            grid,
        };
        Ok((slots, staged))
    }
}

/// The staged layout of a scalar plan of `len` parameters whose members, in group order, are
/// the parameters `perm`: each chunk of [`STAGE_CHUNK`] parameters keeps its place, and its
/// members fill it from the start in group order. Returns each member's slot (group order) and,
/// per slot of the whole quads of `len`, the offset inside its chunk of the parameter it takes
/// (0 for slots no member fills: a valid parameter, read and never used).
fn stage_slots(len: u32, perm: &[u32]) -> (Vec<u32>, Vec<u32>) {
    let mut filled = vec![0u32; len.div_ceil(STAGE_CHUNK) as usize];
    let mut offsets = vec![0u32; len.div_ceil(4) as usize * 4];
    let slots = perm
        .iter()
        .map(|&param| {
            let chunk = param / STAGE_CHUNK;
            let slot = chunk * STAGE_CHUNK + filled[chunk as usize];
            filled[chunk as usize] += 1;
            offsets[slot as usize] = param - chunk * STAGE_CHUNK;
            slot
        })
        .collect();
    (slots, offsets)
}

#[cfg(test)]
mod tests {
    use super::*;

    /// Every member lands in its own chunk, members of one chunk fill it from the start in group
    /// order, and each slot's offset leads back to the member's parameter.
    #[test]
    fn stage_slots_keep_chunks_and_group_order() {
        let len = 3 * STAGE_CHUNK + 6;
        // Every third parameter, in a scrambled group order that visits every chunk.
        let perm: Vec<u32> = (0..len)
            .step_by(3)
            .map(|i| (i * 7919) % len)
            .collect::<std::collections::BTreeSet<_>>()
            .into_iter()
            .rev()
            .collect();
        let (slots, offsets) = stage_slots(len, &perm);
        assert_eq!(slots.len(), perm.len());
        assert_eq!(offsets.len(), len.div_ceil(4) as usize * 4);
        let mut next = vec![0u32; len.div_ceil(STAGE_CHUNK) as usize];
        for (&param, &slot) in perm.iter().zip(&slots) {
            let chunk = param / STAGE_CHUNK;
            assert_eq!(slot, chunk * STAGE_CHUNK + next[chunk as usize]);
            next[chunk as usize] += 1;
            assert_eq!(chunk * STAGE_CHUNK + offsets[slot as usize], param);
        }
    }
}
