//! Windows: a tensor past one storage binding cut into windows that each fit, and the
//! combine of their partials (`shaders/tie_combine.wgsl`).

use super::map::{TieLayout, TieMap};
use super::plan::{Combine, Pass, Single, ValuesView, Window, Windowed};
use super::staging::Staging;
use super::Ties;
use crate::dispatch::{self, check_binding_size, Grid, WORKGROUP_SIZE};
use crate::error::Result;

crate::uniform_struct! {
    /// The uniform block of `shaders/tie_combine.wgsl`.
    pub(super) struct CombineParams {
        /// Elements of the group values.
        len: u32,
        windows: u32,
        /// Elements between window slots in `partials`.
        slot_stride: u32,
        /// Elements of one group's vector.
        unit_len: u32,
        /// Nonzero: divide by the group's member count.
        mean: u32,
        fold_x: u32,
        total_wg: u32,
        pad: u32,
    }
}

crate::bindings! {
    /// `tie_combine`: `values[i]` = the sum over windows of their `partials`, divided by the
    /// group's member count from `sizes` for means.
    pub(super) struct CombineBindings {
        p @ 0: uniform(CombineParams),
        partials @ 1: read,
        sizes @ 2: read,
        values @ 3: read_write,
    }
}

crate::module!(TIE_COMBINE_MODULE = "tie_combine", [CombineParams],
    parts: ["elementwise", "slice_sum", "tie_combine"]);

crate::kernel!(pub(super) TIE_COMBINE = "tie_combine", TIE_COMBINE_MODULE, CombineBindings);

impl Ties {
    /// Cuts a tensor past one binding into windows of whole units that each fit.
    pub(super) fn build_windowed(
        &self,
        map: &TieMap,
        max_binding: u64,
        staging: Staging,
    ) -> Result<Windowed> {
        let gpu = &self.gpu;
        let layout = map.layout();
        let (outer, _, inner) = layout.view();
        if outer != 1 {
            return self.build_slab_windows(map, max_binding);
        }
        let align = u64::from(gpu.device().limits().min_storage_buffer_offset_alignment);
        let unit_bytes = u64::from(inner.max(1)) * 4;
        // Less one quad, so the quad-padded plan buffers of a window fit too.
        let per_window =
            dispatch::window_units(gpu, "one tied unit", unit_bytes, max_binding - 16)?;
        let units = layout.units() as u64;
        let values_bytes = (map.values_len() as u64 * 4).max(4);
        let slot_bytes = values_bytes.div_ceil(align) * align;
        let count = units.div_ceil(per_window);
        check_binding_size(gpu, "tie window partials", count * slot_bytes)?;
        let mut windows: Vec<Window> = Vec::new();
        for w in 0..count {
            let (u0, u1) = (w * per_window, ((w + 1) * per_window).min(units));
            let sub_layout = match layout {
                TieLayout::Scalar { .. } => TieLayout::Scalar {
                    len: (u1 - u0) as u32,
                },
                TieLayout::Blocks { inner, .. } => TieLayout::rows((u1 - u0) as u32, inner),
            };
            let ids = map.ids()[u0 as usize..u1 as usize].to_vec();
            let sub = TieMap::new(sub_layout, map.groups(), ids)?;
            let shared_staged = windows.first().and_then(|w| w.plan.staged_copy());
            let values = ValuesView::dense(sub_layout);
            windows.push(Window {
                plan: Single::build(self, &sub, values, None, (staging, shared_staged))?,
                offset: u0 * unit_bytes,
                bytes: (u1 - u0) * unit_bytes,
            });
        }
        let combine = self.plan_combine(map, count as u32, slot_bytes)?;
        Ok(Windowed {
            windows,
            combine: Some(combine),
        })
    }

    /// The combine of `windows` slots of partials, `slot_bytes` apart.
    fn plan_combine(&self, map: &TieMap, windows: u32, slot_bytes: u64) -> Result<Combine> {
        let gpu = &self.gpu;
        let len = map.values_len() as u32;
        let grid = Grid::for_items(gpu, u64::from(len), u64::from(WORKGROUP_SIZE))?;
        gpu.scoped(|| {
            let params = |mean| CombineParams {
                len,
                windows,
                slot_stride: (slot_bytes / 4) as u32,
                unit_len: map.layout().unit_len() as u32,
                mean,
                fold_x: grid.fold_x(),
                total_wg: grid.total,
                pad: 0,
            };
            Ok(Combine {
                partials: dispatch::scratch(
                    gpu,
                    "tie window partials",
                    u64::from(windows) * slot_bytes,
                    wgpu::BufferUsages::empty(),
                ),
                slot_bytes,
                sizes: dispatch::storage_init(
                    gpu,
                    "tie group sizes",
                    &map.group_sizes(),
                    wgpu::BufferUsages::empty(),
                ),
                pass: Pass::sum_and_mean(gpu, "tie combine", grid, params),
            })
        })
    }

    /// Cuts a column or conv-channel tensor (`[outer][rows][inner]`, whose tied units
    /// interleave) past one binding into windows of whole outer slabs `[rows][inner]`. Every
    /// window holds every unit's share for its slabs, so it reduces and broadcasts its own
    /// columns of each group's vector directly: no partials to combine.
    fn build_slab_windows(&self, map: &TieMap, max_binding: u64) -> Result<Windowed> {
        let layout = map.layout();
        let (outer, rows, inner) = layout.view();
        let slab_bytes = u64::from(rows) * u64::from(inner) * 4;
        let per = dispatch::window_units(
            &self.gpu,
            "one outer slab [rows][inner] of the tensor",
            slab_bytes,
            max_binding,
        )?;
        let per = u32::try_from(per).unwrap_or(u32::MAX);
        let mut windows: Vec<Window> = Vec::new();
        for w in 0..outer.div_ceil(per) {
            let (first, count) = (w * per, per.min(outer - w * per));
            let sub_layout = TieLayout::Blocks {
                outer: count,
                rows,
                inner,
            };
            let sub = TieMap::new(sub_layout, map.groups(), map.ids().to_vec())?;
            let values = ValuesView {
                stride: outer * inner,
                offset: first * inner,
            };
            // Every window ties the same rows: the first window's tables serve them all (its
            // partials are the largest).
            let tables = windows.first().map(|w| &w.plan);
            let plan = Single::build(self, &sub, values, tables, (Staging::Never, None))?;
            windows.push(Window {
                plan,
                offset: u64::from(first) * slab_bytes,
                bytes: u64::from(count) * slab_bytes,
            });
        }
        Ok(Windowed {
            windows,
            combine: None,
        })
    }
}
