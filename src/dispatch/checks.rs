//! Checks of caller ranges ([`BufferRange`]): bounds, alignment, size, usage, map state,
//! overlap, binding limits, windows. Every family's record calls check through these.

use crate::buffer::BufferRange;
use crate::error::{Error, Result};
use crate::gpu::Gpu;

/// How many units of `unit_bytes` one binding window holds on this device: as many as fit in
/// `max_binding` bytes, rounded down so every window's byte offset stays a multiple of
/// `min_storage_buffer_offset_alignment`. 0 when one unit is larger than a window.
pub(crate) fn units_per_window(device: &wgpu::Device, unit_bytes: u64, max_binding: u64) -> u64 {
    fn gcd(a: u64, b: u64) -> u64 {
        if b == 0 {
            a.max(1)
        } else {
            gcd(b, a % b)
        }
    }
    let align = u64::from(device.limits().min_storage_buffer_offset_alignment);
    let unit_bytes = unit_bytes.max(1);
    let step = align / gcd(unit_bytes, align);
    (max_binding / unit_bytes) / step * step
}

/// [`units_per_window`] for a tensor that must be cut into windows of whole units of
/// `unit_bytes`, each at most `max_binding` bytes: the count, or the error saying why no
/// window fits (`unit` past the binding limit, or windows of whole units that cannot start at
/// aligned offsets).
pub(crate) fn window_units(
    gpu: &Gpu,
    unit: &'static str,
    unit_bytes: u64,
    max_binding: u64,
) -> Result<u64> {
    match units_per_window(gpu.device(), unit_bytes, max_binding) {
        0 => {
            check_binding_size(gpu, unit, unit_bytes)?;
            let hint = gpu.limit_hint("max_storage_buffer_binding_size", max_binding, |a| {
                a.max_storage_buffer_binding_size
            });
            Err(Error::LimitExceeded {
                limit: "max_storage_buffer_binding_size",
                needed: unit_bytes,
                allowed: max_binding,
                hint: format!(
                    "; windows of whole `{unit}` units cannot start at offsets aligned to \
                     min_storage_buffer_offset_alignment and still fit one binding: use a \
                     smaller unit{hint}"
                ),
            })
        }
        n => Ok(n),
    }
}

/// Checks that a caller's range holds `elements` f32/u32 values, starts at an offset the
/// device can bind, has `usage`, is not mapped, and fits one binding on this device.
pub(crate) fn check_buffer<'a>(
    gpu: &Gpu,
    name: &'static str,
    range: impl Into<BufferRange<'a>>,
    elements: u64,
    usage: wgpu::BufferUsages,
) -> Result<()> {
    let range = range.into();
    check_buffer_windowed(gpu, name, range, elements, usage, true)?;
    check_binding_size(gpu, name, range.size())
}

/// [`check_buffer`] for a plan that may bind the range in windows (each at an aligned offset
/// from the range's start): with `windowed`, the binding limit is not checked.
pub(crate) fn check_buffer_windowed<'a>(
    gpu: &Gpu,
    name: &'static str,
    range: impl Into<BufferRange<'a>>,
    elements: u64,
    usage: wgpu::BufferUsages,
    windowed: bool,
) -> Result<()> {
    let range = range.into();
    if !windowed {
        return check_buffer(gpu, name, range, elements, usage);
    }
    check_buffer_unbound(name, range, elements, usage)?;
    let alignment = u64::from(gpu.device().limits().min_storage_buffer_offset_alignment);
    check_aligned(
        name,
        "offset",
        range.offset(),
        alignment,
        "min_storage_buffer_offset_alignment",
    )
}

/// Checks a caller's range's bounds, size, usage and map state only (for ops that bind it in
/// windows, or only copy or clear it): it lies in its buffer, its offset and size are
/// multiples of 4 (what copies and bindings need) and it holds `elements` words.
///
/// A mapped buffer (or one with a mapping pending) is refused here, since wgpu would only
/// refuse it at submit. A buffer of another device is refused by wgpu when the crate's error
/// scope checks its bind group or copy ([`record_checked`]), not here.
pub(crate) fn check_buffer_unbound<'a>(
    name: &'static str,
    range: impl Into<BufferRange<'a>>,
    elements: u64,
    usage: wgpu::BufferUsages,
) -> Result<()> {
    let range = range.into();
    let buffer = range.buffer();
    let buffer_size = buffer.size();
    if range
        .offset()
        .checked_add(range.size())
        .is_none_or(|end| end > buffer_size)
    {
        return Err(Error::RangeOutOfBounds {
            name,
            offset: range.offset(),
            size: range.size(),
            buffer_size,
        });
    }
    let copy = "COPY_BUFFER_ALIGNMENT (offsets and sizes of copies and bindings)";
    check_aligned(name, "offset", range.offset(), 4, copy)?;
    check_aligned(name, "size", range.size(), 4, copy)?;
    let needed = elements
        .checked_mul(4)
        .ok_or_else(|| Error::BufferTooSmall {
            name,
            needed: u64::MAX,
            actual: range.size(),
        })?;
    if range.size() < needed {
        return Err(Error::BufferTooSmall {
            name,
            needed,
            actual: range.size(),
        });
    }
    let missing = usage - buffer.usage();
    if !missing.is_empty() {
        return Err(Error::MissingUsage { name, missing });
    }
    check_unmapped(name, buffer)
}

fn check_aligned(
    name: &'static str,
    what: &'static str,
    value: u64,
    alignment: u64,
    limit: &'static str,
) -> Result<()> {
    if !value.is_multiple_of(alignment.max(1)) {
        return Err(Error::MisalignedRange {
            name,
            what,
            value,
            alignment,
            limit,
        });
    }
    Ok(())
}

/// Refuses a mapped buffer (mapped at creation, or by a completed `map_async`).
///
/// wgpu 30 has no `map_state()`, so the check asks for a 4-byte view of the buffer's start:
/// it exists only while the buffer is mapped (and is dropped at once), and an "out of
/// bounds" or "overlapping view" answer also means a mapping is active. A buffer whose
/// `map_async` is still pending reads as unmapped here (wgpu itself answers "not mapped"):
/// wgpu refuses it at submit, and that error goes to the device's error handler. Buffers
/// smaller than 4 bytes are not checked (a mapping needs at least 4).
pub(crate) fn check_unmapped(name: &'static str, buffer: &wgpu::Buffer) -> Result<()> {
    if buffer.size() < 4 {
        return Ok(());
    }
    let mapped = match buffer.get_mapped_range(0..4) {
        Ok(view) => {
            drop(view);
            true
        }
        Err(e) => {
            let e = e.to_string();
            e.contains("out of bounds") || e.contains("already been mapped")
        }
    };
    if mapped {
        return Err(Error::BufferMapped { name });
    }
    Ok(())
}

/// Checks that an output's range overlaps none of an op's other ranges (the same bytes
/// cannot be read and written by one pass, nor be two outputs at once): `others` are
/// `(role, range)` pairs. Disjoint ranges of one buffer pass ([`Kernel::run`](super::Kernel::run) binds them
/// through the kernel's shared-buffer pipeline).
pub(crate) fn check_distinct(
    name: &'static str,
    out: BufferRange<'_>,
    others: &[(&'static str, BufferRange<'_>)],
) -> Result<()> {
    match others.iter().find(|(_, r)| r.overlaps(&out)) {
        Some(&(other, _)) => Err(Error::Aliasing { name, other }),
        None => Ok(()),
    }
}

/// The checks of an op whose caller ranges are all bound as `STORAGE`: each
/// `(name, range, elements)` in order as [`check_buffer`], then each range from index
/// `first_output` on (the outputs) as [`check_distinct`] against every range before it.
pub(crate) fn check_op(
    gpu: &Gpu,
    ranges: &[(&'static str, BufferRange<'_>, u64)],
    first_output: usize,
) -> Result<()> {
    let st = wgpu::BufferUsages::STORAGE;
    for &(name, range, elements) in ranges {
        check_buffer(gpu, name, range, elements, st)?;
    }
    let named: Vec<_> = ranges
        .iter()
        .map(|&(name, range, _)| (name, range))
        .collect();
    for (i, &(name, range)) in named.iter().enumerate().skip(first_output) {
        check_distinct(name, range, &named[..i])?;
    }
    Ok(())
}

/// Checks that `bytes` fits in one storage binding.
pub(crate) fn check_binding_size(gpu: &Gpu, name: &'static str, bytes: u64) -> Result<()> {
    let allowed = gpu.device().limits().max_storage_buffer_binding_size;
    if bytes > allowed {
        let hint = gpu.limit_hint("max_storage_buffer_binding_size", allowed, |a| {
            a.max_storage_buffer_binding_size
        });
        return Err(Error::LimitExceeded {
            limit: "max_storage_buffer_binding_size",
            needed: bytes,
            allowed,
            hint: format!("; `{name}` is too large for one binding: split the batch{hint}"),
        });
    }
    Ok(())
}
