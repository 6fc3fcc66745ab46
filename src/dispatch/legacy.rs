//! Pipelines built from a module and a positional role list: the pre-table way, kept only
//! until every family declares its kernels in the table (see `kernel.rs`).

use super::{Grid, Recording};

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
    pub(crate) pipeline: wgpu::ComputePipeline,
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
}
