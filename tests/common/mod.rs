//! Shared test setup: one device per test binary, from the environment (`WGPU_BACKEND`).
//! A missing adapter fails the test loudly: GPU tests are never skipped silently.

#![allow(dead_code)]

use std::sync::OnceLock;

use tied::conv::{Conv2d, Conv2dPlan, ForwardBuffers};
use tied::growl::GroupLayout;
use tied::Gpu;

pub fn gpu() -> &'static Gpu {
    static GPU: OnceLock<Gpu> = OnceLock::new();
    GPU.get_or_init(|| {
        let gpu = Gpu::new_blocking().unwrap_or_else(|e| {
            panic!("no GPU adapter for the tests ({e}); install lavapipe or set WGPU_BACKEND=gl")
        });
        let info = gpu.adapter_info();
        eprintln!("tests run on {} ({:?})", info.name, info.backend);
        gpu
    })
}

/// A second device on the same adapter whose storage bindings hold at most `bytes`: tensors
/// past that must be cut into windows (or refused).
pub fn gpu_with_binding_limit(bytes: u64) -> Gpu {
    gpu_with_limits(wgpu::Limits {
        max_storage_buffer_binding_size: bytes,
        ..tied::required_limits()
    })
}

/// A new device on the environment's adapter (`WGPU_BACKEND`, `WGPU_ADAPTER_NAME`) created
/// with exactly `limits`, adopted.
pub fn gpu_with_limits(limits: wgpu::Limits) -> Gpu {
    let instance =
        wgpu::Instance::new(wgpu::InstanceDescriptor::new_without_display_handle_from_env());
    let adapter = pollster::block_on(wgpu::util::initialize_adapter_from_env_or_default(
        &instance, None,
    ))
    .expect("adapter");
    let (device, queue) = pollster::block_on(adapter.request_device(&wgpu::DeviceDescriptor {
        required_limits: limits,
        ..Default::default()
    }))
    .expect("device");
    Gpu::adopt(device, queue).expect("adopt")
}

/// A new device on the test adapter with the crate's required limits: nothing built on it yet.
pub fn fresh_gpu() -> Gpu {
    gpu_with_binding_limit(tied::required_limits().max_storage_buffer_binding_size)
}

pub fn conv() -> &'static Conv2d {
    static CONV: OnceLock<Conv2d> = OnceLock::new();
    CONV.get_or_init(|| Conv2d::new(gpu()).expect("conv pipelines"))
}

/// wgpu's OpenGL backend shares one context lock per adapter and gives up (panics) after a
/// second of waiting, so long GPU work from parallel tests trips it. Tests hold this guard
/// while they use the GPU: a no-op on other backends, a test-wide lock on GL.
pub fn serial() -> Option<std::sync::MutexGuard<'static, ()>> {
    static LOCK: std::sync::Mutex<()> = std::sync::Mutex::new(());
    let backend = std::env::var("WGPU_BACKEND")
        .unwrap_or_default()
        .to_lowercase();
    let gl = backend.contains("gl") || gpu().adapter_info().backend == wgpu::Backend::Gl;
    gl.then(|| LOCK.lock().unwrap_or_else(|e| e.into_inner()))
}

/// One GrOWL layout of each kind, in this order: `Columns { rows, cols }`,
/// `Rows { rows, cols }`, `ConvInChannels { c_out, c_in, khw }`.
pub fn layouts_of_each_kind(
    [col_rows, col_cols]: [usize; 2],
    [rows, cols]: [usize; 2],
    [c_out, c_in, khw]: [usize; 3],
) -> [GroupLayout; 3] {
    [
        GroupLayout::Columns {
            rows: col_rows,
            cols: col_cols,
        },
        GroupLayout::Rows { rows, cols },
        GroupLayout::ConvInChannels { c_out, c_in, khw },
    ]
}

/// After calls that were refused: records a valid forward (buffers input, weight, bias,
/// output) into `encoder`, then finishes, submits and waits. An encoder that a refused call
/// had left invalid would make wgpu's default error handler panic here, so this checks that
/// nothing was recorded.
pub fn forward_then_submit(
    gpu: &Gpu,
    mut encoder: wgpu::CommandEncoder,
    plan: &Conv2dPlan,
    [input, weight, bias, output]: [&wgpu::Buffer; 4],
) {
    let buffers = ForwardBuffers {
        input,
        weight,
        bias: Some(bias),
        output,
    };
    plan.record_forward(&mut encoder, &buffers).unwrap();
    gpu.queue().submit([encoder.finish()]);
    gpu.device()
        .poll(wgpu::PollType::wait_indefinitely())
        .unwrap();
}

/// A data set of `samples` rows of `dim` bytes (byte `i` is `i * step % 251`) with labels
/// `i % 10`: the bytes, the labels, and the set uploaded to `gpu`.
pub fn byte_set(
    gpu: &Gpu,
    samples: usize,
    dim: usize,
    step: usize,
) -> (Vec<u8>, Vec<u8>, tied::train::DataSet) {
    let data: Vec<u8> = (0..samples * dim).map(|i| (i * step % 251) as u8).collect();
    let labels: Vec<u8> = (0..samples).map(|i| (i % 10) as u8).collect();
    let set = tied::train::DataSet::upload(gpu, &data, &labels, dim).unwrap();
    (data, labels, set)
}
