//! The one way the crate builds pipelines, binds buffers and records dispatches.
//!
//! A `Kernel` is one compute pipeline with its bind-group layout, built once per device.
//! Bindings are in declaration order: binding 0 is always the uniform block of sizes, the rest
//! are storage buffers (the sort adds a second uniform, its window, last). Large 1D grids are
//! folded into 2D with [`Grid`]; shaders recover the linear workgroup index as
//! `wg.x + wg.y * fold_x`, with `fold_x` passed in the uniform.

use crate::error::{Error, Result};
use crate::gpu::Gpu;

/// Threads per workgroup in every kernel of the crate.
pub const WORKGROUP_SIZE: u32 = 256;

/// The role of one binding.
#[derive(Clone, Copy, Debug, PartialEq, Eq)]
pub(crate) enum Binding {
    Uniform,
    Read,
    ReadWrite,
}

/// One compute pipeline plus its bind-group layout.
#[derive(Debug)]
pub(crate) struct Kernel {
    pub(crate) name: &'static str,
    pipeline: wgpu::ComputePipeline,
    layout: wgpu::BindGroupLayout,
}

impl Kernel {
    /// Builds the pipeline for `entry` in `module`, with pipeline-overridable `constants`.
    pub(crate) fn new(
        device: &wgpu::Device,
        name: &'static str,
        module: &wgpu::ShaderModule,
        entry: &str,
        bindings: &[Binding],
        constants: &[(&str, f64)],
    ) -> Self {
        let entries: Vec<wgpu::BindGroupLayoutEntry> = bindings
            .iter()
            .enumerate()
            .map(|(i, b)| wgpu::BindGroupLayoutEntry {
                binding: i as u32,
                visibility: wgpu::ShaderStages::COMPUTE,
                ty: wgpu::BindingType::Buffer {
                    ty: match b {
                        Binding::Uniform => wgpu::BufferBindingType::Uniform,
                        Binding::Read => wgpu::BufferBindingType::Storage { read_only: true },
                        Binding::ReadWrite => wgpu::BufferBindingType::Storage { read_only: false },
                    },
                    has_dynamic_offset: false,
                    min_binding_size: None,
                },
                count: None,
            })
            .collect();
        let layout = device.create_bind_group_layout(&wgpu::BindGroupLayoutDescriptor {
            label: Some(name),
            entries: &entries,
        });
        let pipeline_layout = device.create_pipeline_layout(&wgpu::PipelineLayoutDescriptor {
            label: Some(name),
            bind_group_layouts: &[Some(&layout)],
            immediate_size: 0,
        });
        let pipeline = device.create_compute_pipeline(&wgpu::ComputePipelineDescriptor {
            label: Some(name),
            layout: Some(&pipeline_layout),
            module,
            entry_point: Some(entry),
            compilation_options: wgpu::PipelineCompilationOptions {
                constants,
                // Every kernel writes workgroup memory before reading it.
                zero_initialize_workgroup_memory: false,
            },
            cache: None,
        });
        Self {
            name,
            pipeline,
            layout,
        }
    }

    /// Creates a bind group with `buffers` bound in order (whole buffers).
    pub(crate) fn bind(&self, device: &wgpu::Device, buffers: &[&wgpu::Buffer]) -> wgpu::BindGroup {
        let ranges: Vec<wgpu::BufferBinding> = buffers
            .iter()
            .map(|b| b.as_entire_buffer_binding())
            .collect();
        self.bind_ranges(device, &ranges)
    }

    /// Creates a bind group with buffer ranges bound in order.
    pub(crate) fn bind_ranges(
        &self,
        device: &wgpu::Device,
        ranges: &[wgpu::BufferBinding<'_>],
    ) -> wgpu::BindGroup {
        let entries: Vec<wgpu::BindGroupEntry> = ranges
            .iter()
            .enumerate()
            .map(|(i, r)| wgpu::BindGroupEntry {
                binding: i as u32,
                resource: wgpu::BindingResource::Buffer(r.clone()),
            })
            .collect();
        device.create_bind_group(&wgpu::BindGroupDescriptor {
            label: Some(self.name),
            layout: &self.layout,
            entries: &entries,
        })
    }

    /// Binds `buffers` (whole, in binding order) and adds one pass dispatching `grid` to
    /// `rec` (nothing for an empty grid).
    pub(crate) fn run(
        &self,
        device: &wgpu::Device,
        rec: &mut Recording,
        buffers: &[&wgpu::Buffer],
        grid: Grid,
    ) {
        let ranges: Vec<wgpu::BufferBinding> = buffers
            .iter()
            .map(|b| b.as_entire_buffer_binding())
            .collect();
        self.run_ranges(device, rec, &ranges, grid);
    }

    /// [`Kernel::run`] with buffer ranges. An empty buffer (an empty tensor, which the
    /// kernel does not touch) is bound as the device's 16-byte stand-in.
    pub(crate) fn run_ranges(
        &self,
        device: &wgpu::Device,
        rec: &mut Recording,
        ranges: &[wgpu::BufferBinding<'_>],
        grid: Grid,
    ) {
        if grid.total == 0 {
            return;
        }
        let ranges: Vec<wgpu::BufferBinding> = ranges
            .iter()
            .map(|r| {
                if r.size.is_none() && r.buffer.size() == r.offset {
                    rec.empty.as_entire_buffer_binding()
                } else {
                    r.clone()
                }
            })
            .collect();
        let bind_group = self.bind_ranges(device, &ranges);
        rec.dispatch(self, bind_group, grid);
    }

    /// Records one compute pass dispatching `grid` with `bind_group` (the probes and timers).
    #[cfg_attr(target_arch = "wasm32", allow(dead_code))]
    pub(crate) fn record(
        &self,
        encoder: &mut wgpu::CommandEncoder,
        bind_group: &wgpu::BindGroup,
        grid: Grid,
    ) {
        if grid.total == 0 {
            return;
        }
        let mut pass = encoder.begin_compute_pass(&wgpu::ComputePassDescriptor {
            label: Some(self.name),
            timestamp_writes: None,
        });
        pass.set_pipeline(&self.pipeline);
        pass.set_bind_group(0, bind_group, &[]);
        pass.dispatch_workgroups(grid.x, grid.y, 1);
    }
}

/// The commands of one public `record_*` call, built before anything reaches the caller's
/// encoder: every bind group is created first, inside the crate's error scope (see
/// [`record_checked`]), so a buffer wgpu refuses (destroyed, from another device, sized
/// wrongly) is an `Err` and nothing is recorded.
pub(crate) struct Recording {
    commands: Vec<Command>,
    /// Bound in place of empty buffers ([`Gpu::empty_binding`]).
    empty: wgpu::Buffer,
}

enum Command {
    Dispatch {
        name: &'static str,
        pipeline: wgpu::ComputePipeline,
        bind_group: wgpu::BindGroup,
        grid: Grid,
    },
    /// The first `bytes` of `src` into `dst`.
    Copy {
        src: wgpu::Buffer,
        dst: wgpu::Buffer,
        bytes: u64,
    },
    /// Zeroes the first `bytes` of `buffer`.
    Clear { buffer: wgpu::Buffer, bytes: u64 },
}

impl Recording {
    /// One pass of `kernel` over `grid` with a bind group made earlier (nothing for an empty
    /// grid).
    pub(crate) fn dispatch(&mut self, kernel: &Kernel, bind_group: wgpu::BindGroup, grid: Grid) {
        if grid.total == 0 {
            return;
        }
        self.commands.push(Command::Dispatch {
            name: kernel.name,
            pipeline: kernel.pipeline.clone(),
            bind_group,
            grid,
        });
    }

    /// Copies the first `bytes` of `src` into `dst`.
    pub(crate) fn copy(&mut self, src: &wgpu::Buffer, dst: &wgpu::Buffer, bytes: u64) {
        self.commands.push(Command::Copy {
            src: src.clone(),
            dst: dst.clone(),
            bytes,
        });
    }

    /// Zeroes the first `bytes` of `buffer`.
    pub(crate) fn clear(&mut self, buffer: &wgpu::Buffer, bytes: u64) {
        self.commands.push(Command::Clear {
            buffer: buffer.clone(),
            bytes,
        });
    }

    /// Records the copies and clears (the only commands whose caller buffers no bind group
    /// has checked) into a throwaway encoder and finishes it, so that wgpu validates their
    /// buffers (another device, a missing usage) inside the caller's error scope. Nothing is
    /// submitted.
    fn check_transfers(&self, device: &wgpu::Device) {
        let transfers = || {
            self.commands
                .iter()
                .filter(|c| matches!(c, Command::Copy { .. } | Command::Clear { .. }))
        };
        if transfers().next().is_none() {
            return;
        }
        let mut encoder = device.create_command_encoder(&wgpu::CommandEncoderDescriptor {
            label: Some("tied transfer check (never submitted)"),
        });
        for command in transfers() {
            command.record(&mut encoder);
        }
        drop(encoder.finish());
    }

    fn replay(&self, encoder: &mut wgpu::CommandEncoder) {
        for command in &self.commands {
            command.record(encoder);
        }
    }
}

impl Command {
    fn record(&self, encoder: &mut wgpu::CommandEncoder) {
        match self {
            Command::Dispatch {
                name,
                pipeline,
                bind_group,
                grid,
            } => {
                let mut pass = encoder.begin_compute_pass(&wgpu::ComputePassDescriptor {
                    label: Some(*name),
                    timestamp_writes: None,
                });
                pass.set_pipeline(pipeline);
                pass.set_bind_group(0, bind_group, &[]);
                pass.dispatch_workgroups(grid.x, grid.y, 1);
            }
            Command::Copy { src, dst, bytes } => {
                encoder.copy_buffer_to_buffer(src, 0, dst, 0, *bytes);
            }
            Command::Clear { buffer, bytes } => encoder.clear_buffer(buffer, 0, Some(*bytes)),
        }
    }
}

/// Builds the commands of one public `record_*` call inside `gpu`'s error scope (so every
/// bind group is checked there), then records them into `encoder`; on error nothing is
/// recorded.
pub(crate) fn record_checked(
    gpu: &Gpu,
    encoder: &mut wgpu::CommandEncoder,
    build: impl FnOnce(&mut Recording) -> Result<()>,
) -> Result<()> {
    let recording = gpu.scoped(|| {
        let mut recording = Recording {
            commands: Vec::new(),
            empty: gpu.empty_binding().clone(),
        };
        build(&mut recording)?;
        recording.check_transfers(gpu.device());
        Ok(recording)
    })?;
    recording.replay(encoder);
    Ok(())
}

/// Creates a shader module from WGSL source.
pub(crate) fn shader(device: &wgpu::Device, label: &str, source: &str) -> wgpu::ShaderModule {
    device.create_shader_module(wgpu::ShaderModuleDescriptor {
        label: Some(label),
        source: wgpu::ShaderSource::Wgsl(source.into()),
    })
}

/// A 1D grid of `total` workgroups folded into `x * y` (each at most `max_per_dim`).
/// Workgroups with linear index `>= total` exit at once.
#[derive(Clone, Copy, Debug, PartialEq, Eq)]
pub struct Grid {
    /// Workgroups wanted.
    pub total: u32,
    /// Dispatch width (also the `fold_x` the shader needs).
    pub x: u32,
    /// Dispatch height.
    pub y: u32,
}

impl Grid {
    /// Folds `total` workgroups for a device allowing `max_per_dim` per dimension.
    pub fn fold(total: u64, max_per_dim: u32) -> Result<Self> {
        let max = u64::from(max_per_dim.max(1));
        if total > max * max {
            return Err(Error::LimitExceeded {
                limit: "max_compute_workgroups_per_dimension",
                needed: total.div_ceil(max),
                allowed: max,
                hint: "; the problem is too large for one dispatch, split it".into(),
            });
        }
        if total > u64::from(u32::MAX) {
            return Err(Error::LimitExceeded {
                limit: "workgroups in one dispatch",
                needed: total,
                allowed: u64::from(u32::MAX),
                hint: "; split the problem".into(),
            });
        }
        let x = total.min(max);
        let y = if total == 0 { 0 } else { total.div_ceil(x) };
        if x * y > u64::from(u32::MAX) {
            // The shaders' linear workgroup index would wrap.
            return Err(Error::LimitExceeded {
                limit: "workgroups in one folded dispatch",
                needed: x * y,
                allowed: u64::from(u32::MAX),
                hint: "; split the problem".into(),
            });
        }
        Ok(Self {
            total: total as u32,
            x: x as u32,
            y: y as u32,
        })
    }
}

/// Creates a buffer holding `bytes` (padded to at least 4 bytes and a multiple of 4).
///
/// Written through the queue rather than `mapped_at_creation`, so that a lost device yields
/// a captured error instead of a panic.
fn buffer_with(gpu: &Gpu, label: &str, bytes: &[u8], usage: wgpu::BufferUsages) -> wgpu::Buffer {
    let size = (bytes.len() as u64).div_ceil(4).max(1) * 4;
    let buffer = gpu.device().create_buffer(&wgpu::BufferDescriptor {
        label: Some(label),
        size,
        usage: usage | wgpu::BufferUsages::COPY_DST,
        mapped_at_creation: false,
    });
    if bytes.len().is_multiple_of(4) {
        gpu.queue().write_buffer(&buffer, 0, bytes);
    } else {
        let mut padded = bytes.to_vec();
        padded.resize(size as usize, 0);
        gpu.queue().write_buffer(&buffer, 0, &padded);
    }
    buffer
}

/// Creates a uniform buffer holding `value`.
pub(crate) fn uniform<T: bytemuck::Pod>(gpu: &Gpu, label: &str, value: &T) -> wgpu::Buffer {
    buffer_with(
        gpu,
        label,
        bytemuck::bytes_of(value),
        wgpu::BufferUsages::UNIFORM,
    )
}

/// Creates a storage buffer holding `data` (at least 4 bytes, so empty tables bind).
pub(crate) fn storage_init<T: bytemuck::Pod>(
    gpu: &Gpu,
    label: &str,
    data: &[T],
    extra: wgpu::BufferUsages,
) -> wgpu::Buffer {
    buffer_with(
        gpu,
        label,
        bytemuck::cast_slice(data),
        wgpu::BufferUsages::STORAGE | extra,
    )
}

/// A whole buffer as a binding.
pub(crate) fn whole(b: &wgpu::Buffer) -> wgpu::BufferBinding<'_> {
    b.as_entire_buffer_binding()
}

/// `bytes` of `b` from `offset` as a binding (at least 4 bytes).
pub(crate) fn range(b: &wgpu::Buffer, offset: u64, bytes: u64) -> wgpu::BufferBinding<'_> {
    wgpu::BufferBinding {
        buffer: b,
        offset,
        size: std::num::NonZeroU64::new(bytes.max(4)),
    }
}

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

/// Checks that a caller's buffer holds `elements` f32/u32 values, has `usage`, is not
/// mapped, and fits one binding on this device.
pub(crate) fn check_buffer(
    gpu: &Gpu,
    name: &'static str,
    buffer: &wgpu::Buffer,
    elements: u64,
    usage: wgpu::BufferUsages,
) -> Result<()> {
    check_buffer_unbound(name, buffer, elements, usage)?;
    check_binding_size(gpu, name, buffer.size())
}

/// [`check_buffer`] for a plan that may bind the buffer in windows: with `windowed`, only the
/// size, usage and map state are checked.
pub(crate) fn check_buffer_windowed(
    gpu: &Gpu,
    name: &'static str,
    buffer: &wgpu::Buffer,
    elements: u64,
    usage: wgpu::BufferUsages,
    windowed: bool,
) -> Result<()> {
    if windowed {
        check_buffer_unbound(name, buffer, elements, usage)
    } else {
        check_buffer(gpu, name, buffer, elements, usage)
    }
}

/// Checks a caller's buffer's size, usage and map state only (for ops that bind it in
/// windows, or only copy it).
///
/// A mapped buffer (or one with a mapping pending) is refused here, since wgpu would only
/// refuse it at submit. A buffer of another device is refused by wgpu when the crate's error
/// scope checks its bind group or copy ([`record_checked`]), not here.
pub(crate) fn check_buffer_unbound(
    name: &'static str,
    buffer: &wgpu::Buffer,
    elements: u64,
    usage: wgpu::BufferUsages,
) -> Result<()> {
    let needed = elements
        .checked_mul(4)
        .ok_or_else(|| Error::BufferTooSmall {
            name,
            needed: u64::MAX,
            actual: buffer.size(),
        })?;
    if buffer.size() < needed {
        return Err(Error::BufferTooSmall {
            name,
            needed,
            actual: buffer.size(),
        });
    }
    let missing = usage - buffer.usage();
    if !missing.is_empty() {
        return Err(Error::MissingUsage { name, missing });
    }
    check_unmapped(name, buffer)
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

/// Checks that an output buffer is none of an op's other buffers (a buffer cannot be bound
/// both read-only and writable in one pass, nor be two outputs at once): `others` are
/// `(role, buffer)` pairs.
pub(crate) fn check_distinct(
    name: &'static str,
    out: &wgpu::Buffer,
    others: &[(&'static str, &wgpu::Buffer)],
) -> Result<()> {
    match others.iter().find(|(_, b)| *b == out) {
        Some(&(other, _)) => Err(Error::Aliasing { name, other }),
        None => Ok(()),
    }
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

/// Usage for buffers the crate creates for host data: bindable, uploadable, readable back.
pub const TENSOR_USAGE: wgpu::BufferUsages = wgpu::BufferUsages::STORAGE
    .union(wgpu::BufferUsages::COPY_DST)
    .union(wgpu::BufferUsages::COPY_SRC);

/// Uploads `data` into a new storage buffer with [`TENSOR_USAGE`] (at least 4 bytes).
///
/// Infallible by signature: wgpu reports a failure (a slice past the device's
/// `max_buffer_size`, out of memory) to the device's error handler, which on a device you
/// adopted is yours (wgpu's default panics). Check sizes first, or use the host-slice calls,
/// which capture such errors.
pub fn upload(gpu: &Gpu, label: &str, data: &[f32]) -> wgpu::Buffer {
    storage_init(gpu, label, data, TENSOR_USAGE)
}

/// Creates an uninitialised storage buffer (plus `extra` usages) of `bytes` (at least 4): a
/// plan's scratch.
pub(crate) fn scratch(
    gpu: &Gpu,
    label: &str,
    bytes: u64,
    extra: wgpu::BufferUsages,
) -> wgpu::Buffer {
    gpu.device().create_buffer(&wgpu::BufferDescriptor {
        label: Some(label),
        size: bytes.max(4),
        usage: wgpu::BufferUsages::STORAGE | extra,
        mapped_at_creation: false,
    })
}

/// Creates a zeroed storage buffer of `elements` f32 with [`TENSOR_USAGE`] (at least 4 bytes).
/// Failures go to the device's error handler, as for [`upload`].
pub fn zeros(gpu: &Gpu, label: &str, elements: usize) -> wgpu::Buffer {
    gpu.device().create_buffer(&wgpu::BufferDescriptor {
        label: Some(label),
        size: (elements as u64).saturating_mul(4).max(4),
        usage: TENSOR_USAGE,
        mapped_at_creation: false,
    })
}

/// Copies the first `elements` f32 of `buffer` (which needs `COPY_SRC`) back to the host.
///
/// Uses `map_async` and awaits the callback, so it works on the web; on native it also polls
/// the device until the copy is done. Submits one command buffer.
///
/// # Errors
/// [`Error::DeviceLost`], [`Error::Readback`], or errors captured while recording the copy.
pub async fn read_back(gpu: &Gpu, buffer: &wgpu::Buffer, elements: usize) -> Result<Vec<f32>> {
    if elements == 0 {
        return Ok(Vec::new());
    }
    let elements = u64::try_from(elements).unwrap_or(u64::MAX);
    check_buffer_unbound(
        "read_back source",
        buffer,
        elements,
        wgpu::BufferUsages::COPY_SRC,
    )?;
    // The buffer holds `elements` words, so this does not overflow.
    let bytes = elements * 4;
    let device = gpu.device();
    // Everything that can fail, the mapping included, runs inside the error scopes: on an
    // adopted device wgpu's default handler would panic.
    let (staging, rx) = gpu
        .scoped_async(|| {
            let staging = device.create_buffer(&wgpu::BufferDescriptor {
                label: Some("tied readback"),
                size: bytes,
                usage: wgpu::BufferUsages::MAP_READ | wgpu::BufferUsages::COPY_DST,
                mapped_at_creation: false,
            });
            let mut encoder = device.create_command_encoder(&Default::default());
            encoder.copy_buffer_to_buffer(buffer, 0, &staging, 0, bytes);
            gpu.queue().submit([encoder.finish()]);
            let (tx, rx) = futures::channel::oneshot::channel();
            staging.map_async(wgpu::MapMode::Read, .., move |r| {
                let _ = tx.send(r);
            });
            Ok((staging, rx))
        })
        .await?;
    #[cfg(not(target_arch = "wasm32"))]
    if let Err(e) = device.poll(wgpu::PollType::wait_indefinitely()) {
        // A lost device is the better answer when it is what happened.
        gpu.check_lost_async().await?;
        return Err(Error::Readback(format!("waiting for the GPU failed: {e}")));
    }
    let mapped = match rx.await {
        Ok(mapped) => mapped,
        Err(_) => {
            gpu.scoped_async(|| Ok(())).await?;
            return Err(Error::Readback("the map callback was dropped".into()));
        }
    };
    if let Err(e) = mapped {
        gpu.scoped_async(|| Ok(())).await?;
        return Err(Error::Readback(format!("{e} (was the device lost?)")));
    }
    let view = staging
        .get_mapped_range(..)
        .map_err(|e| Error::Readback(e.to_string()))?;
    let out = bytemuck::pod_collect_to_vec::<u8, f32>(&view);
    drop(view);
    staging.unmap();
    Ok(out)
}

/// [`read_back`] of a buffer of `u32` (ids, block ids, payloads).
pub(crate) async fn read_back_u32(
    gpu: &Gpu,
    buffer: &wgpu::Buffer,
    elements: usize,
) -> Result<Vec<u32>> {
    let words = read_back(gpu, buffer, elements).await?;
    Ok(words.into_iter().map(f32::to_bits).collect())
}

/// The convenience paths' one way to run: inside error scopes, `record` creates what it needs
/// and records into a fresh encoder; the commands are then submitted. Returns what `record`
/// returned (the buffers to read back).
pub(crate) async fn record_and_submit<T>(
    gpu: &Gpu,
    record: impl FnOnce(&mut wgpu::CommandEncoder) -> Result<T>,
) -> Result<T> {
    let (encoder, out) = gpu
        .scoped_async(|| {
            let mut encoder = gpu.device().create_command_encoder(&Default::default());
            let out = record(&mut encoder)?;
            Ok((encoder, out))
        })
        .await?;
    submit(gpu, encoder).await?;
    Ok(out)
}

/// Submits `encoder`'s commands, with errors captured.
pub(crate) async fn submit(gpu: &Gpu, encoder: wgpu::CommandEncoder) -> Result<()> {
    gpu.scoped_async(|| {
        gpu.queue().submit([encoder.finish()]);
        Ok(())
    })
    .await
}
