//! The kernel-tap tables the conv GEMMs read instead of dividing, and the stride phases of
//! the input gradient (which input positions each tap reaches).

use super::Conv2dShape;
use crate::dispatch;
use crate::error::{Error, Result};
use crate::gpu::Gpu;

/// One stride phase of the input gradient: input positions `start + step * i` per axis
/// (`count` of them) and the kernel-tap table of the taps that reach them.
pub(super) struct DataPhase {
    pub(super) start: [u32; 2],
    pub(super) step: [u32; 2],
    pub(super) count: [u32; 2],
    pub(super) table: Vec<[i32; 4]>,
}

/// Residues modulo the stride of axis `axis` (below the input size) that some kernel tap
/// reaches, each with its taps: input position `ih` meets tap `t` when
/// `ih + pad - t * dil` is a multiple of the stride. At most `kernel` residues, found from the
/// taps (no walk over the stride).
pub(super) fn reached_residues(s: &Conv2dShape, axis: usize) -> Vec<(u32, Vec<u32>)> {
    let stride = i64::from(s.stride[axis]);
    let mut reached: Vec<(u32, Vec<u32>)> = Vec::new();
    for t in 0..s.kernel[axis] {
        let r = (i64::from(t) * i64::from(s.dilation[axis]) - i64::from(s.padding[axis]))
            .rem_euclid(stride);
        if r >= i64::from(s.in_size[axis]) {
            continue;
        }
        let r = r as u32;
        match reached.iter_mut().find(|(q, _)| *q == r) {
            Some((_, taps)) => taps.push(t),
            None => reached.push((r, vec![t])),
        }
    }
    reached.sort_by_key(|&(r, _)| r);
    reached
}

/// Stride phases of the input gradient that some tap reaches: the input positions congruent
/// to (ph, pw) modulo the stride, each with only the kernel taps that reach them (for stride
/// 1, one phase with every tap). Each tap then meets each position of its phase at a whole
/// output coordinate. Phases no tap reaches are left to the zero pass.
pub(super) fn data_phases(s: &Conv2dShape, out_size: [u32; 2]) -> Result<Vec<DataPhase>> {
    let rows = reached_residues(s, 0);
    let cols = reached_residues(s, 1);
    let mut phases = Vec::with_capacity(rows.len() * cols.len());
    for (ph, th) in &rows {
        for (pw, tw) in &cols {
            phases.push(DataPhase {
                start: [*ph, *pw],
                step: s.stride,
                count: [
                    (s.in_size[0] - ph).div_ceil(s.stride[0]),
                    (s.in_size[1] - pw).div_ceil(s.stride[1]),
                ],
                table: data_table(s, out_size, th, tw, [*ph, *pw])?,
            });
        }
    }
    Ok(phases)
}

/// A table entry as the shaders read it (i32), or the error naming what does not fit.
fn entry(what: &str, value: i64) -> Result<i32> {
    i32::try_from(value).map_err(|_| {
        Error::shape(format!(
            "the conv tap table's {what} ({value}) does not fit i32: the shape is too large"
        ))
    })
}

/// Per-(ci, kh, kw) offsets the forward and weight-gradient shaders read instead of
/// dividing: `(ci * in_h * in_w, kh * dil_h, kw * dil_w, 0)`. Checked arithmetic: an entry
/// past i32 is an error.
pub(super) fn forward_table(s: &Conv2dShape) -> Result<Vec<[i32; 4]>> {
    let plane = i64::from(s.in_size[0]) * i64::from(s.in_size[1]);
    let taps = u64::from(s.in_per_group()) * u64::from(s.kernel[0]) * u64::from(s.kernel[1]);
    let mut table = Vec::with_capacity(usize::try_from(taps).unwrap_or(0));
    for c in 0..s.in_per_group() {
        let channel = entry("input channel offset", i64::from(c) * plane)?;
        for y in 0..s.kernel[0] {
            let dy = entry("row offset", i64::from(y) * i64::from(s.dilation[0]))?;
            for x in 0..s.kernel[1] {
                let dx = entry("column offset", i64::from(x) * i64::from(s.dilation[1]))?;
                table.push([channel, dy, dx, 0]);
            }
        }
    }
    Ok(table)
}

/// The input-gradient taps `(co, th[i], tw[j])` of the stride phase starting at input
/// position `start`: `(co * out_h * out_w, dy, dx, co * c_in_g * kh * kw + kh * k_w + kw)`,
/// where `(dy, dx)` is the tap's output coordinate minus the position's index within the
/// phase: `(start + pad - kh * dil) / stride`, exact for the taps that reach the phase. The
/// shader then needs no division. Checked arithmetic: an entry past i32 is an error.
fn data_table(
    s: &Conv2dShape,
    [oh, ow]: [u32; 2],
    th: &[u32],
    tw: &[u32],
    start: [u32; 2],
) -> Result<Vec<[i32; 4]>> {
    let (kh, kw) = (i64::from(s.kernel[0]), i64::from(s.kernel[1]));
    let offset = |axis: usize, tap: u32| -> Result<i32> {
        let q = i64::from(start[axis]) + i64::from(s.padding[axis])
            - i64::from(tap) * i64::from(s.dilation[axis]);
        entry("output offset", q.div_euclid(i64::from(s.stride[axis])))
    };
    let (dys, dxs) = (
        th.iter()
            .map(|&y| offset(0, y))
            .collect::<Result<Vec<_>>>()?,
        tw.iter()
            .map(|&x| offset(1, x))
            .collect::<Result<Vec<_>>>()?,
    );
    let plane = i64::from(oh) * i64::from(ow);
    let filter = i64::from(s.in_per_group()) * kh * kw;
    let mut table = Vec::with_capacity(s.out_per_group() as usize * th.len() * tw.len());
    for c in 0..s.out_per_group() {
        let channel = entry("output channel offset", i64::from(c) * plane)?;
        for (&y, &dy) in th.iter().zip(&dys) {
            for (&x, &dx) in tw.iter().zip(&dxs) {
                let tap = i64::from(c) * filter + i64::from(y) * kw + i64::from(x);
                table.push([channel, dy, dx, entry("weight index", tap)?]);
            }
        }
    }
    Ok(table)
}

/// Uploads a tap table; an empty one (no input or output channels) gets one
/// unused entry so that it can be bound.
pub(super) fn table_buffer(gpu: &Gpu, label: &str, table: &[[i32; 4]]) -> wgpu::Buffer {
    let table = if table.is_empty() {
        &[[0; 4]][..]
    } else {
        table
    };
    dispatch::storage_init(gpu, label, table, wgpu::BufferUsages::empty())
}
