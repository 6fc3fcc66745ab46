//! An engine that embeds `tied`: it owns its instance, adapter and device (its own limits and
//! features: the WebGPU defaults), renders to an offscreen target, and in the same encoder
//! records a conv forward and a tied reduce and broadcast on ranges of its one pooled buffer,
//! then submits once per frame. The results are checked against the CPU twins and the render
//! target is read back; the median CPU cost of recording the three calls per frame is printed.
//!
//! `cargo run --release --example embed` (`WGPU_BACKEND=vulkan|gl` picks the adapter). Exits
//! non-zero when a check fails.

use std::process::ExitCode;
use std::time::Instant;

use tied::buffer::BufferRange;
use tied::conv::{Conv2d, Conv2dShape, ForwardBuffers, Passes};
use tied::tying::{Reduction, TieLayout, TieMap, Ties, UNTIED};

const FRAMES: usize = 100;
const TARGET: u32 = 64;
const FORMAT: wgpu::TextureFormat = wgpu::TextureFormat::Rgba8Unorm;

/// The engine's pool: one buffer, tensors bump-allocated at offsets aligned to the device's
/// `min_storage_buffer_offset_alignment`.
struct Pool {
    buffer: wgpu::Buffer,
    align: u64,
    next: u64,
}

impl Pool {
    fn new(device: &wgpu::Device, bytes: u64) -> Self {
        let buffer = device.create_buffer(&wgpu::BufferDescriptor {
            label: Some("engine pool"),
            size: bytes,
            usage: wgpu::BufferUsages::STORAGE
                | wgpu::BufferUsages::COPY_DST
                | wgpu::BufferUsages::COPY_SRC,
            mapped_at_creation: false,
        });
        let align = u64::from(device.limits().min_storage_buffer_offset_alignment);
        Self {
            buffer,
            align,
            next: 0,
        }
    }

    /// `(offset, words)` of the next tensor of `words` f32.
    fn alloc(&mut self, words: usize) -> (u64, usize) {
        let at = self.next.div_ceil(self.align) * self.align;
        self.next = at + words as u64 * 4;
        assert!(self.next <= self.buffer.size(), "the pool is full");
        (at, words)
    }

    fn range(&self, (at, words): (u64, usize)) -> BufferRange<'_> {
        BufferRange::new(&self.buffer, at, words as u64 * 4)
    }

    fn write(&self, queue: &wgpu::Queue, (at, _): (u64, usize), data: &[f32]) {
        queue.write_buffer(&self.buffer, at, bytemuck::cast_slice(data));
    }
}

/// The engine's own render work: a triangle over a cleared offscreen target.
struct Renderer {
    pipeline: wgpu::RenderPipeline,
    view: wgpu::TextureView,
    texture: wgpu::Texture,
    readback: wgpu::Buffer,
}

const TRIANGLE: &str = "
@vertex fn vs(@builtin(vertex_index) i: u32) -> @builtin(position) vec4<f32> {
    var p = array<vec2<f32>, 3>(vec2(-0.5, -0.5), vec2(0.5, -0.5), vec2(0.0, 0.6));
    return vec4<f32>(p[i], 0.0, 1.0);
}
@fragment fn fs() -> @location(0) vec4<f32> { return vec4<f32>(1.0, 0.0, 0.0, 1.0); }
";

impl Renderer {
    fn new(device: &wgpu::Device) -> Self {
        let module = device.create_shader_module(wgpu::ShaderModuleDescriptor {
            label: Some("triangle"),
            source: wgpu::ShaderSource::Wgsl(TRIANGLE.into()),
        });
        let pipeline = device.create_render_pipeline(&wgpu::RenderPipelineDescriptor {
            label: Some("triangle"),
            layout: None,
            vertex: wgpu::VertexState {
                module: &module,
                entry_point: Some("vs"),
                compilation_options: Default::default(),
                buffers: &[],
            },
            fragment: Some(wgpu::FragmentState {
                module: &module,
                entry_point: Some("fs"),
                compilation_options: Default::default(),
                targets: &[Some(FORMAT.into())],
            }),
            primitive: Default::default(),
            depth_stencil: None,
            multisample: Default::default(),
            multiview_mask: None,
            cache: None,
        });
        let texture = device.create_texture(&wgpu::TextureDescriptor {
            label: Some("offscreen target"),
            size: wgpu::Extent3d {
                width: TARGET,
                height: TARGET,
                depth_or_array_layers: 1,
            },
            mip_level_count: 1,
            sample_count: 1,
            dimension: wgpu::TextureDimension::D2,
            format: FORMAT,
            usage: wgpu::TextureUsages::RENDER_ATTACHMENT | wgpu::TextureUsages::COPY_SRC,
            view_formats: &[],
        });
        let readback = device.create_buffer(&wgpu::BufferDescriptor {
            label: Some("target readback"),
            size: u64::from(TARGET * TARGET * 4),
            usage: wgpu::BufferUsages::COPY_DST | wgpu::BufferUsages::MAP_READ,
            mapped_at_creation: false,
        });
        Self {
            pipeline,
            view: texture.create_view(&Default::default()),
            texture,
            readback,
        }
    }

    fn render(&self, encoder: &mut wgpu::CommandEncoder) {
        let mut pass = encoder.begin_render_pass(&wgpu::RenderPassDescriptor {
            label: Some("engine frame"),
            color_attachments: &[Some(wgpu::RenderPassColorAttachment {
                view: &self.view,
                depth_slice: None,
                resolve_target: None,
                ops: wgpu::Operations {
                    load: wgpu::LoadOp::Clear(wgpu::Color::BLUE),
                    store: wgpu::StoreOp::Store,
                },
            })],
            depth_stencil_attachment: None,
            timestamp_writes: None,
            occlusion_query_set: None,
            multiview_mask: None,
        });
        pass.set_pipeline(&self.pipeline);
        pass.draw(0..3, 0..1);
    }

    fn copy_out(&self, encoder: &mut wgpu::CommandEncoder) {
        encoder.copy_texture_to_buffer(
            self.texture.as_image_copy(),
            wgpu::TexelCopyBufferInfo {
                buffer: &self.readback,
                layout: wgpu::TexelCopyBufferLayout {
                    offset: 0,
                    bytes_per_row: Some(TARGET * 4),
                    rows_per_image: None,
                },
            },
            self.texture.size(),
        );
    }

    /// The RGBA8 pixels at the centre and in a corner.
    fn pixels(&self, device: &wgpu::Device) -> Result<[[u8; 4]; 2], String> {
        let slice = self.readback.slice(..);
        slice.map_async(wgpu::MapMode::Read, |_| {});
        device
            .poll(wgpu::PollType::wait_indefinitely())
            .map_err(|e| e.to_string())?;
        let view = slice.get_mapped_range().map_err(|e| e.to_string())?;
        let at = |x: u32, y: u32| {
            let i = ((y * TARGET + x) * 4) as usize;
            [view[i], view[i + 1], view[i + 2], view[i + 3]]
        };
        let px = [at(TARGET / 2, TARGET / 2), at(1, 1)];
        drop(view);
        self.readback.unmap();
        Ok(px)
    }
}

fn values(n: usize, seed: u32) -> Vec<f32> {
    (0..n)
        .map(|i| {
            let h = (i as u32 ^ seed).wrapping_mul(0x9e37_79b9).rotate_left(13);
            (h % 2001) as f32 / 1000.0 - 1.0
        })
        .collect()
}

fn close(name: &str, got: &[f32], want: &[f32], tol: f32) -> Result<(), String> {
    for (i, (g, w)) in got.iter().zip(want).enumerate() {
        if (g - w).abs() > tol * (1.0 + w.abs()) {
            return Err(format!("{name}[{i}] = {g}, the CPU twin gives {w}"));
        }
    }
    Ok(())
}

fn main() -> ExitCode {
    match run() {
        Ok(()) => ExitCode::SUCCESS,
        Err(e) => {
            eprintln!("embed: FAILED: {e}");
            ExitCode::FAILURE
        }
    }
}

/// The engine's device: its own limits (the WebGPU defaults) and features.
fn engine_device() -> Result<(wgpu::Device, wgpu::Queue), String> {
    let instance =
        wgpu::Instance::new(wgpu::InstanceDescriptor::new_without_display_handle_from_env());
    let adapter = pollster::block_on(wgpu::util::initialize_adapter_from_env_or_default(
        &instance, None,
    ))
    .map_err(|e| format!("no adapter: {e}"))?;
    let info = adapter.get_info();
    println!("adapter: {} ({:?})", info.name, info.backend);
    pollster::block_on(adapter.request_device(&wgpu::DeviceDescriptor {
        label: Some("engine device"),
        required_features: tied::required_features(),
        required_limits: wgpu::Limits::default(),
        ..Default::default()
    }))
    .map_err(|e| format!("no device: {e}"))
}

fn run() -> Result<(), String> {
    let (device, queue) = engine_device()?;
    // Handed to the crate: checked against its needs, no handlers installed.
    let gpu = tied::Gpu::adopt(device.clone(), queue.clone()).map_err(|e| e.to_string())?;
    let conv = Conv2d::new(&gpu).map_err(|e| e.to_string())?;
    let shape = Conv2dShape::new(1, 4, 8, [16, 16], [3, 3])
        .padding(1)
        .with_bias(true);
    let plan = conv.plan(&shape).map_err(|e| e.to_string())?;
    // Pipelines are built on first use; the engine builds the conv ones before its first frame.
    plan.prepare(Passes::Forward).map_err(|e| e.to_string())?;
    // The conv output's channels 0-3 tied to 4-7 pairwise; channel 7 untied.
    let positions = 16 * 16;
    let map = TieMap::new(
        TieLayout::rows(8, positions),
        4,
        vec![0, 1, 2, 3, 0, 1, 2, UNTIED],
    )
    .map_err(|e| e.to_string())?;
    let ties = Ties::new(&gpu)
        .and_then(|t| t.plan(&map))
        .map_err(|e| e.to_string())?;

    let mut pool = Pool::new(&device, 1 << 20);
    let x = pool.alloc(shape.input_len());
    let w = pool.alloc(shape.weight_len());
    let b = pool.alloc(shape.bias_len());
    let y = pool.alloc(shape.output_len());
    let tied_params = pool.alloc(map.layout().params_len());
    let group_values = pool.alloc(map.values_len());
    let (wh, bh) = (values(shape.weight_len(), 2), values(shape.bias_len(), 3));
    let params0 = values(map.layout().params_len(), 4);
    pool.write(&queue, w, &wh);
    pool.write(&queue, b, &bh);
    let renderer = Renderer::new(&device);

    let mut record_us = Vec::with_capacity(FRAMES);
    for frame in 0..FRAMES {
        let xh = values(shape.input_len(), 100 + frame as u32);
        pool.write(&queue, x, &xh);
        pool.write(&queue, tied_params, &params0);
        let mut encoder = device.create_command_encoder(&Default::default());
        renderer.render(&mut encoder);
        let t0 = Instant::now();
        record_compute(
            &mut encoder,
            (&plan, &ties),
            &pool,
            [x, w, b, y, tied_params, group_values],
        )
        .map_err(|e| format!("recording frame {frame}: {e}"))?;
        record_us.push(t0.elapsed().as_secs_f64() * 1e6);
        let check = frame == 0 || frame == FRAMES - 1;
        if check {
            renderer.copy_out(&mut encoder);
        }
        queue.submit([encoder.finish()]);
        if check {
            check_frame(
                &gpu,
                &pool,
                (&shape, &map),
                (&xh, &wh, &bh, &params0),
                [y, tied_params, group_values],
            )?;
            let [centre, corner] = renderer.pixels(&device)?;
            if centre != [255, 0, 0, 255] || corner != [0, 0, 255, 255] {
                return Err(format!(
                    "render target: centre {centre:?} (want red), corner {corner:?} (want blue)"
                ));
            }
        }
    }
    // The first frame still builds pipelines: the shared-buffer twins of the passes that bind
    // one buffer both read-only and writable (once per device; the tie kernels are built by
    // `Ties::new`, the conv ones by `prepare`).
    let first = record_us[0];
    let mut rest = record_us[1..].to_vec();
    rest.sort_by(f64::total_cmp);
    println!(
        "frames: {FRAMES}, each one render pass + conv forward + tie reduce + tie broadcast on \
         ranges of one {} KiB pool, one submit",
        pool.buffer.size() >> 10
    );
    println!(
        "CPU cost of recording per frame: median {:.1} us (min {:.1}, max {:.1}) over frames \
         2-{FRAMES}; the first frame {:.0} us (it builds the shared-buffer pipelines)",
        rest[rest.len() / 2],
        rest[0],
        rest[rest.len() - 1],
        first
    );
    println!(
        "checks: conv output, group values and tied params match the CPU twins; render target ok"
    );
    Ok(())
}

/// The compute work of a frame, on ranges of the pool: conv forward `x, w, b -> y`, the tie
/// reduction of `y` into `values`, and its broadcast into `params`.
fn record_compute(
    encoder: &mut wgpu::CommandEncoder,
    (plan, ties): (&tied::conv::Conv2dPlan, &tied::tying::TiePlan),
    pool: &Pool,
    [x, w, b, y, params, values]: [(u64, usize); 6],
) -> tied::Result<()> {
    let fwd = ForwardBuffers {
        input: pool.range(x),
        weight: pool.range(w),
        bias: Some(pool.range(b)),
        output: pool.range(y),
    };
    plan.record_forward(encoder, &fwd)?;
    ties.record_reduce(encoder, pool.range(y), pool.range(values), Reduction::Mean)?;
    ties.record_broadcast(encoder, pool.range(params), pool.range(values))
}

/// Reads the pool back and checks a frame against the CPU twins.
fn check_frame(
    gpu: &tied::Gpu,
    pool: &Pool,
    (shape, map): (&Conv2dShape, &TieMap),
    (x, w, b, params0): (&[f32], &[f32], &[f32], &[f32]),
    [y, params, vals]: [(u64, usize); 3],
) -> Result<(), String> {
    let words = (pool.next / 4) as usize;
    let all = pollster::block_on(tied::buffer::read_back(gpu, &pool.buffer, words))
        .map_err(|e| e.to_string())?;
    let at = |(off, len): (u64, usize)| &all[(off / 4) as usize..][..len];
    let want_y = tied::conv::cpu::forward(shape, x, w, Some(b));
    close("conv output", at(y), &want_y, 1e-4)?;
    // The tie twins on the GPU's conv output, so each op is checked on its own input.
    let want_v = tied::tying::cpu::reduce(map, at(y), Reduction::Mean);
    close("group values", at(vals), &want_v, 1e-5)?;
    let want_p = tied::tying::cpu::broadcast(map, params0, at(vals));
    close("tied params", at(params), &want_p, 0.0)
}
