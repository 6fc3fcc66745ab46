//! Bad input returns the right `Err`, never a panic; empty input is a no-op.

mod common;

use tied::conv::{BackwardWeightBuffers, Conv2dShape, ForwardBuffers};
use tied::{buffer, Error, Gpu};

fn shape() -> Conv2dShape {
    Conv2dShape::new(2, 3, 4, [6, 6], [3, 3])
        .padding(1)
        .with_bias(true)
}

#[test]
fn invalid_shapes() {
    let _serial = common::serial();
    let conv = common::conv();
    let bad = [
        Conv2dShape::new(1, 3, 4, [6, 6], [3, 3]).groups(2),
        Conv2dShape::new(1, 4, 4, [6, 6], [3, 3]).groups(0),
        Conv2dShape::new(1, 3, 4, [2, 2], [3, 3]),
        Conv2dShape::new(1, 3, 4, [6, 6], [3, 3]).stride(0),
        Conv2dShape::new(1, 3, 4, [6, 6], [3, 3]).dilation(0),
        Conv2dShape::new(1, 3, 4, [6, 6], [0, 3]),
        Conv2dShape::new(1, 3, 4, [5, 5], [3, 3]).dilation(3),
        // Sizes whose products overflow 32 bits, with channels and without.
        Conv2dShape::new(1, 1 << 16, 1, [1 << 24, 1 << 24], [1 << 24, 1 << 24]),
        Conv2dShape::new(0, 1, 0, [65_536, 65_536], [65_536, 65_536]),
        Conv2dShape::new(1, 1, 1, [1, 1], [1, 1]).padding(1 << 31),
        // A zero batch or zero channels must not hide the other factors.
        Conv2dShape::new(0, 1, 2, [65_536, 65_536], [1, 1]),
        Conv2dShape::new(0, 1, 2, [65_536, 65_536], [1, 1]).with_bias(true),
        Conv2dShape::new(1, 0, 0, [1, 1], [65_537, 65_537]).padding(32_769),
    ];
    for s in bad {
        match conv.plan(&s) {
            Err(Error::Shape(msg)) => assert!(!msg.is_empty()),
            other => panic!("{s:?}: expected Err(Shape), got {other:?}"),
        }
    }
}

#[test]
fn length_mismatches() {
    let _serial = common::serial();
    let conv = common::conv();
    let s = shape();
    let (x, w, b) = (
        vec![0.0; s.input_len()],
        vec![0.0; s.weight_len()],
        vec![0.0; 4],
    );
    let r = conv.forward_blocking(&s, &x[1..], &w, Some(&b));
    assert!(
        matches!(r, Err(Error::LengthMismatch { name: "input", .. })),
        "{r:?}"
    );
    let r = conv.forward_blocking(&s, &x, &w[..5], Some(&b));
    assert!(
        matches!(r, Err(Error::LengthMismatch { name: "weight", .. })),
        "{r:?}"
    );
    let r = conv.forward_blocking(&s, &x, &w, Some(&b[..3]));
    assert!(
        matches!(r, Err(Error::LengthMismatch { name: "bias", .. })),
        "{r:?}"
    );
    let r = conv.forward_blocking(&s, &x, &w, None);
    assert!(matches!(r, Err(Error::Shape(_))), "{r:?}");
    let r = conv.backward_blocking(&s, &x, &w, &[1.0; 3]);
    assert!(
        matches!(
            r,
            Err(Error::LengthMismatch {
                name: "grad_output",
                ..
            })
        ),
        "{r:?}"
    );
}

#[test]
fn small_buffers_and_missing_usage() {
    let _serial = common::serial();
    let gpu = common::gpu();
    let conv = common::conv();
    let s = shape();
    let plan = conv.plan(&s).unwrap();
    let device = gpu.device();
    let input = buffer::zeros(gpu, "x", s.input_len());
    let weight = buffer::zeros(gpu, "w", s.weight_len());
    let bias = buffer::zeros(gpu, "b", s.bias_len());
    let small = buffer::zeros(gpu, "small", s.output_len() - 1);
    let no_storage = device.create_buffer(&wgpu::BufferDescriptor {
        label: None,
        size: s.output_len() as u64 * 4,
        usage: wgpu::BufferUsages::COPY_DST,
        mapped_at_creation: false,
    });
    let mut encoder = device.create_command_encoder(&Default::default());
    let mut bufs = ForwardBuffers {
        input: &input,
        weight: &weight,
        bias: Some(&bias),
        output: &small,
    };
    let r = plan.record_forward(&mut encoder, &bufs);
    assert!(
        matches!(r, Err(Error::BufferTooSmall { name: "output", .. })),
        "{r:?}"
    );
    bufs.output = &no_storage;
    let r = plan.record_forward(&mut encoder, &bufs);
    assert!(
        matches!(r, Err(Error::MissingUsage { name: "output", .. })),
        "{r:?}"
    );
    bufs.output = &input;
    let r = plan.record_forward(&mut encoder, &bufs);
    assert!(r.is_err(), "an output aliasing the input must be refused");
    let big = buffer::zeros(gpu, "bias and output", s.output_len());
    bufs.bias = Some(&big);
    bufs.output = &big;
    let r = plan.record_forward(&mut encoder, &bufs);
    assert!(
        matches!(
            r,
            Err(Error::Aliasing {
                name: "output",
                other: "bias"
            })
        ),
        "an output aliasing the bias: {r:?}"
    );
    bufs.bias = None;
    bufs.output = &small;
    let r = plan.record_forward(&mut encoder, &bufs);
    assert!(r.is_err());
    // Nothing invalid was recorded: the encoder still finishes and submits cleanly.
    let mut ok = device.create_command_encoder(&Default::default());
    let out = buffer::zeros(gpu, "y", s.output_len());
    plan.record_forward(
        &mut ok,
        &ForwardBuffers {
            input: &input,
            weight: &weight,
            bias: Some(&bias),
            output: &out,
        },
    )
    .unwrap();
    gpu.queue().submit([encoder.finish(), ok.finish()]);
}

#[test]
fn empty_batch_and_channels_are_no_ops() {
    let _serial = common::serial();
    let gpu = common::gpu();
    let conv = common::conv();
    let s = Conv2dShape::new(0, 3, 4, [6, 6], [3, 3]).with_bias(true);
    let y = conv
        .forward_blocking(&s, &[], &vec![1.0; s.weight_len()], Some(&[1.0; 4]))
        .unwrap();
    assert!(y.is_empty());
    let g = conv
        .backward_blocking(&s, &[], &vec![1.0; s.weight_len()], &[])
        .unwrap();
    assert!(g.input.is_empty());
    assert!(g.weight.iter().all(|&v| v == 0.0) && g.weight.len() == s.weight_len());
    assert_eq!(g.bias, vec![0.0; 4]);

    let s = Conv2dShape::new(2, 0, 0, [6, 6], [3, 3]);
    assert!(conv
        .forward_blocking(&s, &[], &[], None)
        .unwrap()
        .is_empty());

    // No input channels but some output channels: the output is the bias alone, and the
    // bias gradient the sum of the output gradient (empty tap tables are still bindable).
    let s = Conv2dShape::new(2, 0, 3, [6, 6], [3, 3]).with_bias(true);
    let bias = [0.5, -1.0, 2.0];
    let y = conv.forward_blocking(&s, &[], &[], Some(&bias)).unwrap();
    assert_eq!(y, tied::conv::cpu::forward(&s, &[], &[], Some(&bias)));
    let dy = vec![1.0; s.output_len()];
    let g = conv.backward_blocking(&s, &[], &[], &dy).unwrap();
    assert!(g.input.is_empty() && g.weight.is_empty());
    assert_eq!(g.bias, tied::conv::cpu::backward_bias(&s, &dy));

    // Recording an empty batch into an encoder records no dispatch (a clear at most).
    let s = Conv2dShape::new(0, 2, 2, [4, 4], [3, 3]);
    let plan = conv.plan(&s).unwrap();
    let gw = buffer::zeros(gpu, "gw", s.weight_len());
    let empty = buffer::zeros(gpu, "empty", 0);
    let mut enc = gpu.device().create_command_encoder(&Default::default());
    plan.record_backward_weight(
        &mut enc,
        &BackwardWeightBuffers {
            grad_output: &empty,
            input: &buffer::zeros(gpu, "x", 0),
            grad_weight: &gw,
            grad_bias: None,
        },
    )
    .unwrap();
    gpu.queue().submit([enc.finish()]);
}

fn lavapipe_or_default_adapter() -> wgpu::Adapter {
    let instance =
        wgpu::Instance::new(wgpu::InstanceDescriptor::new_without_display_handle_from_env());
    pollster::block_on(wgpu::util::initialize_adapter_from_env_or_default(
        &instance, None,
    ))
    .expect("an adapter")
}

/// A device on `adapter` with exactly the crate's required limits, adopted.
fn adopted_with_required_limits(adapter: &wgpu::Adapter) -> Gpu {
    let (device, queue) = pollster::block_on(adapter.request_device(&wgpu::DeviceDescriptor {
        required_limits: tied::required_limits(),
        ..Default::default()
    }))
    .unwrap();
    Gpu::adopt(device, queue).unwrap()
}

/// A storage buffer of exactly `values` (zero bytes when empty), readable and writable.
fn exact_buffer(gpu: &Gpu, values: &[f32]) -> wgpu::Buffer {
    let buffer = gpu.device().create_buffer(&wgpu::BufferDescriptor {
        label: None,
        size: values.len() as u64 * 4,
        usage: wgpu::BufferUsages::STORAGE
            | wgpu::BufferUsages::COPY_SRC
            | wgpu::BufferUsages::COPY_DST,
        mapped_at_creation: false,
    });
    gpu.queue()
        .write_buffer(&buffer, 0, bytemuck::cast_slice(values));
    buffer
}

#[test]
fn adopted_device_with_low_limits_is_refused_or_bounded() {
    let _serial = common::serial();
    let adapter = lavapipe_or_default_adapter();
    // A device with too few storage buffers: adopting it names the limit.
    let mut limits = tied::required_limits();
    limits.max_storage_buffers_per_shader_stage = 4;
    let (device, queue) = pollster::block_on(adapter.request_device(&wgpu::DeviceDescriptor {
        required_limits: limits,
        ..Default::default()
    }))
    .unwrap();
    match Gpu::adopt(device, queue) {
        Err(Error::LimitExceeded { limit, .. }) => {
            assert_eq!(limit, "max_storage_buffers_per_shader_stage")
        }
        other => panic!("expected LimitExceeded, got {other:?}"),
    }

    // A device with exactly the required limits: a tensor past its binding size is refused.
    let gpu = adopted_with_required_limits(&adapter);
    let conv = tied::conv::Conv2d::new(&gpu).unwrap();
    let huge = Conv2dShape::new(64, 64, 64, [128, 128], [3, 3]).padding(1);
    match conv.plan(&huge) {
        Err(Error::LimitExceeded { limit, .. }) => {
            assert_eq!(limit, "max_storage_buffer_binding_size")
        }
        other => panic!("expected LimitExceeded, got {other:?}"),
    }
}

#[test]
fn missing_feature_is_named() {
    let _serial = common::serial();
    let r = tied::check_features(wgpu::Features::empty());
    assert!(r.is_ok(), "the default path needs no feature");
    let noop_limits = wgpu::Limits {
        max_compute_workgroup_storage_size: 1024,
        ..tied::required_limits()
    };
    match tied::check_limits(&noop_limits) {
        Err(e @ Error::LimitExceeded { .. }) => {
            assert!(
                e.to_string().contains("max_compute_workgroup_storage_size"),
                "{e}"
            )
        }
        other => panic!("{other:?}"),
    }
}

#[test]
fn device_loss_is_an_error() {
    let _serial = common::serial();
    // A device of our own (not the shared one), destroyed mid-use.
    let gpu = Gpu::new_blocking().unwrap();
    let conv = tied::conv::Conv2d::new(&gpu).unwrap();
    let s = shape();
    let (x, w, b) = (
        vec![0.5; s.input_len()],
        vec![0.5; s.weight_len()],
        vec![0.5; 4],
    );
    assert!(conv.forward_blocking(&s, &x, &w, Some(&b)).is_ok());
    gpu.device().destroy();
    lost("forward", conv.forward_blocking(&s, &x, &w, Some(&b)));
    let dy = vec![0.5; s.output_len()];
    lost("backward", conv.backward_blocking(&s, &x, &w, &dy));
}

/// Sizes past what 32-bit indices (or the host) can hold are errors, never overflow panics.
#[test]
fn sizes_past_u32_are_errors() {
    let _serial = common::serial();
    let layouts = tied::conv::LayoutTranspose::new(common::gpu()).unwrap();
    assert!(matches!(layouts.plan([65_536; 4]), Err(Error::Shape(_))));
    let huge = tied::growl::GroupLayout::Columns {
        rows: 0,
        cols: usize::MAX,
    };
    assert!(tied::growl::cpu::growl_prox(&[], huge, &[]).is_err());
    let oscar = tied::growl::Weights::Oscar { l1: 1.0, l2: 0.0 };
    assert!(matches!(
        oscar.sequence(usize::MAX, 1.0),
        Err(Error::Shape(_))
    ));
}

/// Buffers that pass the size and usage checks but that wgpu refuses when binding (destroyed,
/// or a size that is not a multiple of 4) are an `Err` on an adopted device, which has no
/// error handler of ours (wgpu's default one panics), and nothing is recorded.
#[test]
fn buffers_wgpu_refuses_are_errors_on_an_adopted_device() {
    let _serial = common::serial();
    let adapter = lavapipe_or_default_adapter();
    let gpu = adopted_with_required_limits(&adapter);
    let conv = tied::conv::Conv2d::new(&gpu).unwrap();
    let s = shape();
    let plan = conv.plan(&s).unwrap();
    let storage = |label, bytes| {
        gpu.device().create_buffer(&wgpu::BufferDescriptor {
            label: Some(label),
            size: bytes,
            usage: wgpu::BufferUsages::STORAGE,
            mapped_at_creation: false,
        })
    };
    let input = storage("x", s.input_len() as u64 * 4);
    let weight = storage("w", s.weight_len() as u64 * 4);
    let bias = storage("b", s.bias_len() as u64 * 4);
    let output = storage("y", s.output_len() as u64 * 4);
    let ragged = storage("y + 2 bytes", s.output_len() as u64 * 4 + 2);
    let destroyed = storage("destroyed x", s.input_len() as u64 * 4);
    destroyed.destroy();
    let mut encoder = gpu.device().create_command_encoder(&Default::default());
    for (input, output) in [(&destroyed, &output), (&input, &ragged)] {
        let r = plan.record_forward(
            &mut encoder,
            &ForwardBuffers {
                input,
                weight: &weight,
                bias: Some(&bias),
                output,
            },
        );
        assert!(
            r.is_err(),
            "{:?} -> {:?}: {r:?}",
            input.size(),
            output.size()
        );
    }
    let ties = tied::tying::Ties::new(&gpu).unwrap();
    let map = tied::tying::TieMap::new(
        tied::tying::TieLayout::Scalar { len: 8 },
        2,
        vec![0, 1, 0, 1, 0, 1, 0, 1],
    )
    .unwrap();
    let tie_plan = ties.plan(&map).unwrap();
    let src = storage("src", 32);
    let values = storage("values", 8);
    values.destroy();
    let r = tie_plan.record_reduce(&mut encoder, &src, &values, tied::tying::Reduction::Sum);
    assert!(r.is_err(), "{r:?}");
    // Nothing was recorded: the encoder still finishes and submits cleanly.
    common::forward_then_submit(&gpu, encoder, &plan, [&input, &weight, &bias, &output]);
}

/// Tie maps over empty tensors, or with no groups, record through the encoder with exactly
/// sized (zero-byte) caller buffers: reductions write 0 to every (empty) group, broadcasts do
/// nothing, and nothing is an error.
#[test]
fn empty_tie_tensors_record_with_zero_byte_buffers() {
    let _serial = common::serial();
    let gpu = common::gpu();
    let ties = tied::tying::Ties::new(gpu).unwrap();
    use tied::tying::{Reduction, TieLayout, TieMap, UNTIED};
    let maps = [
        TieMap::new(TieLayout::Scalar { len: 0 }, 3, vec![]).unwrap(),
        TieMap::new(TieLayout::rows(0, 4), 2, vec![]).unwrap(),
        TieMap::new(TieLayout::Scalar { len: 5 }, 0, vec![UNTIED; 5]).unwrap(),
        TieMap::new(TieLayout::rows(3, 4), 0, vec![UNTIED; 3]).unwrap(),
        TieMap::new(TieLayout::rows(3, 0), 2, vec![0, 1, 0]).unwrap(),
    ];
    let exact = |values: &[f32]| exact_buffer(gpu, values);
    for map in &maps {
        let plan = ties.plan(map).unwrap();
        let src = exact(&vec![1.0; map.layout().params_len()]);
        let values = exact(&vec![7.0; map.values_len()]);
        let mut encoder = gpu.device().create_command_encoder(&Default::default());
        let layout = map.layout();
        plan.record_reduce(&mut encoder, &src, &values, Reduction::Mean)
            .unwrap_or_else(|e| panic!("reduce {layout:?}: {e}"));
        plan.record_broadcast(&mut encoder, &src, &values)
            .unwrap_or_else(|e| panic!("broadcast {layout:?}: {e}"));
        gpu.queue().submit([encoder.finish()]);
        let got = pollster::block_on(buffer::read_back(gpu, &values, map.values_len())).unwrap();
        assert_eq!(got, vec![0.0; map.values_len()], "{layout:?}");
    }
}

/// Conv shapes with an empty input or weight but a non-empty result record with exactly
/// sized (zero-byte) caller buffers: zero input channels or an input of only padding give the
/// bias, zero output channels a zero input gradient.
#[test]
fn conv_with_empty_operands_records_with_zero_byte_buffers() {
    use tied::conv::BackwardDataBuffers;
    let _serial = common::serial();
    let gpu = common::gpu();
    let conv = common::conv();
    let exact = |n: usize, v: f32| exact_buffer(gpu, &vec![v; n]);
    let read =
        |b: &wgpu::Buffer, n: usize| pollster::block_on(buffer::read_back(gpu, b, n)).unwrap();
    // (shape, output value, input-gradient value, bias-gradient value): bias 2, grad_output 2.
    let cases = [
        (
            Conv2dShape::new(1, 0, 4, [6, 6], [3, 3]).with_bias(true),
            2.0,
            0.0,
            32.0,
        ),
        (
            Conv2dShape::new(1, 3, 4, [0, 0], [1, 1])
                .padding(1)
                .with_bias(true),
            2.0,
            0.0,
            8.0,
        ),
        (Conv2dShape::new(1, 3, 0, [6, 6], [3, 3]), 0.0, 0.0, 0.0),
    ];
    for (s, y_value, gx_value, gb_value) in cases {
        let plan = conv.plan(&s).unwrap();
        let (x, w, b) = (
            exact(s.input_len(), 1.0),
            exact(s.weight_len(), 1.0),
            exact(s.bias_len(), 2.0),
        );
        let (y, dy) = (exact(s.output_len(), 7.0), exact(s.output_len(), 2.0));
        let (gx, gw, gb) = (
            exact(s.input_len(), 7.0),
            exact(s.weight_len(), 7.0),
            exact(s.bias_len(), 7.0),
        );
        let bias = (s.bias_len() > 0).then_some(&b);
        let grad_bias = (s.bias_len() > 0).then_some(&gb);
        let mut encoder = gpu.device().create_command_encoder(&Default::default());
        plan.record_forward(
            &mut encoder,
            &ForwardBuffers {
                input: &x,
                weight: &w,
                bias,
                output: &y,
            },
        )
        .unwrap_or_else(|e| panic!("forward {s:?}: {e}"));
        plan.record_backward_data(
            &mut encoder,
            &BackwardDataBuffers {
                grad_output: &dy,
                weight: &w,
                grad_input: &gx,
            },
        )
        .unwrap_or_else(|e| panic!("input grad {s:?}: {e}"));
        plan.record_backward_weight(
            &mut encoder,
            &BackwardWeightBuffers {
                grad_output: &dy,
                input: &x,
                grad_weight: &gw,
                grad_bias,
            },
        )
        .unwrap_or_else(|e| panic!("weight grad {s:?}: {e}"));
        gpu.queue().submit([encoder.finish()]);
        assert_eq!(
            read(&y, s.output_len()),
            vec![y_value; s.output_len()],
            "{s:?}"
        );
        assert_eq!(
            read(&gx, s.input_len()),
            vec![gx_value; s.input_len()],
            "{s:?}"
        );
        assert_eq!(
            read(&gw, s.weight_len()),
            vec![0.0; s.weight_len()],
            "{s:?}"
        );
        assert_eq!(
            read(&gb, s.bias_len()),
            vec![gb_value; s.bias_len()],
            "{s:?}"
        );
    }
}

/// A GrOWL group whose norm is past `f32::MAX` is refused on the host path (an OWL input must
/// be a finite f32); a group whose sum of squares alone would overflow f32 (elements of 3e19)
/// is fine: the norms are scaled by powers of two.
#[test]
fn growl_norm_overflow_is_an_error() {
    let _serial = common::serial();
    let growl = tied::growl::GrowlProx::new(common::gpu()).unwrap();
    let layout = tied::growl::GroupLayout::Rows { rows: 2, cols: 2 };
    let r = growl.prox_blocking(&[1.0, 2.0, 3e38, 3e38], layout, &[0.1, 0.1]);
    assert!(
        matches!(r, Err(Error::Shape(ref m)) if m.contains("group 1")),
        "{r:?}"
    );
    let r = tied::growl::cpu::growl_prox(&[1.0, 2.0, 3e38, 3e38], layout, &[0.1, 0.1]);
    assert!(
        matches!(r, Err(Error::Shape(ref m)) if m.contains("group 1")),
        "{r:?}"
    );
    let m = [1.0, 2.0, 3e19, 1.0];
    let got = growl.prox_blocking(&m, layout, &[0.1, 0.1]).unwrap();
    let want = tied::growl::cpu::growl_prox(&m, layout, &[0.1, 0.1]).unwrap();
    let close = |a: &[f32], b: &[f32]| {
        a.iter()
            .zip(b)
            .all(|(x, y)| (x - y).abs() <= 1e-6 * y.abs())
    };
    assert!(close(&got.norms, &want.norms), "{got:?} vs {want:?}");
    assert!(close(&got.weights, &want.weights), "{got:?} vs {want:?}");
}

/// A device adopted from the caller, on the environment's adapter, with exactly the crate's
/// required limits.
fn adopted() -> Gpu {
    adopted_with_required_limits(&lavapipe_or_default_adapter())
}

fn lost<T: std::fmt::Debug>(what: &str, r: tied::Result<T>) {
    assert!(
        matches!(r, Err(Error::DeviceLost(_))),
        "{what}: expected DeviceLost, got {r:?}"
    );
}

/// Issue 13, section 2: the tap tables of a shape `validate` accepts (an empty batch of
/// planes of 2^30 positions, several channels) overflowed u32 while planning. Such shapes are
/// refused: one image's input and output must fit as they do for a non-empty batch.
#[test]
fn empty_batches_of_huge_planes_are_errors_not_overflows() {
    let _serial = common::serial();
    let conv = common::conv();
    for s in [
        Conv2dShape::new(0, 8, 4, [32_768, 32_767], [1, 1]),
        Conv2dShape::new(0, 1, 8, [32_768, 32_767], [1, 1]),
        Conv2dShape::new(0, 8, 8, [32_767, 32_767], [1, 1]).with_bias(true),
    ] {
        match conv.plan(&s) {
            Err(Error::Shape(msg)) => assert!(msg.contains("one image"), "{msg}"),
            other => panic!("{s:?}: expected Err(Shape), got {other:?}"),
        }
    }
    // The same planes with one channel still plan (the batch is empty: nothing runs).
    let s = Conv2dShape::new(0, 1, 1, [32_768, 32_767], [1, 1]);
    conv.plan(&s).unwrap();
}

/// Issue 13, section 2: `read_back` of a count whose byte size overflows is an error.
#[test]
fn read_back_of_huge_counts_is_an_error() {
    let _serial = common::serial();
    let gpu = common::gpu();
    let buffer = buffer::zeros(gpu, "small", 4);
    for elements in [usize::MAX, usize::MAX / 4 + 1, 1 << 40] {
        let r = pollster::block_on(buffer::read_back(gpu, &buffer, elements));
        assert!(
            matches!(
                r,
                Err(Error::BufferTooSmall {
                    name: "read_back source",
                    ..
                })
            ),
            "{elements}: {r:?}"
        );
    }
}

/// Issue 13, sections 2 and 5: GrOWL layouts whose element count overflows (even 128 bits)
/// are shape errors, never an overflow panic or a length mismatch of `usize::MAX`.
#[test]
fn huge_growl_layouts_are_shape_errors() {
    let _serial = common::serial();
    use tied::growl::{cpu, GroupLayout, GrowlProx};
    let growl = GrowlProx::new(common::gpu()).unwrap();
    let huge = [
        GroupLayout::ConvInChannels {
            c_out: usize::MAX,
            c_in: 2,
            khw: usize::MAX,
        },
        GroupLayout::Rows {
            rows: usize::MAX,
            cols: 2,
        },
        GroupLayout::Columns {
            rows: 1 << 33,
            cols: 1 << 33,
        },
    ];
    for layout in huge {
        let r = growl.plan(layout);
        assert!(matches!(r, Err(Error::Shape(_))), "plan {layout:?}: {r:?}");
        let r = growl.prox_blocking(&[], layout, &[]);
        assert!(matches!(r, Err(Error::Shape(_))), "prox {layout:?}: {r:?}");
        let r = cpu::growl_prox(&[], layout, &[]);
        assert!(matches!(r, Err(Error::Shape(_))), "twin {layout:?}: {r:?}");
    }
}

/// Issue 13, section 2: units of zero elements let any group count through, and planning
/// then allocated a table per group on the host (16 GiB for `u32::MAX` groups). Group
/// values count one slot per group at least, and plans bound the group tables by the device
/// before building them.
#[test]
fn group_counts_are_bounded_even_for_empty_units() {
    let _serial = common::serial();
    use tied::tying::{TieLayout, TieMap, Ties};
    for groups in [u32::MAX, u32::MAX - 1, (1 << 30) + 1] {
        let r = TieMap::new(TieLayout::rows(3, 0), groups, vec![0, 1, 0]);
        assert!(matches!(r, Err(Error::Shape(_))), "{groups}: {r:?}");
    }
    // Accepted by the map, refused by a device whose bindings hold 2^25 words.
    let gpu = adopted();
    let ties = Ties::new(&gpu).unwrap();
    let map = TieMap::new(TieLayout::rows(3, 0), 1 << 29, vec![0, 1, 0]).unwrap();
    match ties.plan(&map) {
        Err(Error::LimitExceeded { hint, .. }) => assert!(hint.contains("group offsets"), "{hint}"),
        other => panic!("expected LimitExceeded, got {other:?}"),
    }
    let r = ties.reduce_blocking(&map, &[], tied::tying::Reduction::Sum);
    assert!(matches!(r, Err(Error::LimitExceeded { .. })), "{r:?}");
}

/// Issue 13, section 2: `conv_in_channels` saturated `kh * kw` at `u32::MAX` and the map
/// was accepted; it is refused now.
#[test]
fn conv_in_channel_layouts_do_not_saturate() {
    use tied::tying::TieLayout;
    for (kh, kw) in [(65_536, 65_536), (u32::MAX, 2), (1 << 20, 1 << 12)] {
        let r = TieLayout::conv_in_channels(1, 1, kh, kw);
        assert!(matches!(r, Err(Error::Shape(_))), "{kh} x {kw}: {r:?}");
    }
    let ok = TieLayout::conv_in_channels(2, 3, 65_535, 65_537).unwrap();
    assert_eq!(ok.unit_len(), 2 * 65_535 * 65_537);
}

/// Issue 13, sections 2 and 3: a destroyed adopted device. `read_back` mapped its staging
/// buffer outside any error scope (wgpu's default handler panicked), and other calls returned
/// `Ok` or a validation error about an invalid buffer: every call returns `DeviceLost` now,
/// and the crate installs no callback or handler on the device.
#[test]
fn adopted_device_loss_is_an_error() {
    let _serial = common::serial();
    let gpu = adopted();
    let conv = tied::conv::Conv2d::new(&gpu).unwrap();
    let ties = tied::tying::Ties::new(&gpu).unwrap();
    let owl = tied::growl::OwlProx::new(&gpu).unwrap();
    let s = shape();
    let plan = conv.plan(&s).unwrap();
    let (x, w, b) = (
        vec![0.5; s.input_len()],
        vec![0.5; s.weight_len()],
        vec![0.5; 4],
    );
    assert!(conv.forward_blocking(&s, &x, &w, Some(&b)).is_ok());
    assert!(gpu.check_lost().is_ok());
    let input = exact_buffer(&gpu, &x);
    let weight = exact_buffer(&gpu, &w);
    let bias = exact_buffer(&gpu, &b);
    let output = exact_buffer(&gpu, &vec![0.0; s.output_len()]);
    let map = tied::tying::TieMap::new(
        tied::tying::TieLayout::Scalar { len: 4 },
        2,
        vec![0, 1, 0, 1],
    )
    .unwrap();
    gpu.device().destroy();
    lost("check_lost", gpu.check_lost());
    lost(
        "read_back",
        pollster::block_on(buffer::read_back(&gpu, &output, 4)),
    );
    lost(
        "forward_blocking",
        conv.forward_blocking(&s, &x, &w, Some(&b)),
    );
    lost("plan", conv.plan(&s));
    lost("Conv2d::new", tied::conv::Conv2d::new(&gpu));
    lost("OwlProx::plan", owl.plan(8));
    let mut encoder = gpu.device().create_command_encoder(&Default::default());
    lost(
        "record_forward",
        plan.record_forward(
            &mut encoder,
            &ForwardBuffers {
                input: &input,
                weight: &weight,
                bias: Some(&bias),
                output: &output,
            },
        ),
    );
    lost(
        "reduce_blocking",
        ties.reduce_blocking(&map, &[1.0; 4], tied::tying::Reduction::Sum),
    );
    lost(
        "owl prox_blocking",
        owl.prox_blocking(&[1.0, 2.0], &[0.5, 0.0]),
    );
}

/// Issue 13, section 3: mapped buffers were accepted by every `record_*` (wgpu refuses them
/// only at submit), and buffers of another device in slots that are only copied or cleared
/// (the weight gradient of an empty batch, the `record_into` sources) were accepted too.
/// Both are refused up front now, on an adopted device (whose error handler, wgpu's default,
/// panics), and nothing is recorded.
#[test]
fn mapped_and_foreign_buffers_are_refused_up_front() {
    use tied::growl::{GroupLayout, GrowlProx, OwlProx};
    let _serial = common::serial();
    // Two devices of one adapter (of one instance: see the README on other instances).
    let adapter = lavapipe_or_default_adapter();
    let gpu = adopted_with_required_limits(&adapter);
    let other = adopted_with_required_limits(&adapter);
    let conv = tied::conv::Conv2d::new(&gpu).unwrap();
    let s = shape();
    let plan = conv.plan(&s).unwrap();
    let mapped = |g: &Gpu, len: usize| {
        g.device().create_buffer(&wgpu::BufferDescriptor {
            label: Some("mapped at creation"),
            size: len as u64 * 4,
            usage: wgpu::BufferUsages::STORAGE | wgpu::BufferUsages::COPY_SRC,
            mapped_at_creation: true,
        })
    };
    let input = exact_buffer(&gpu, &vec![1.0; s.input_len()]);
    let weight = exact_buffer(&gpu, &vec![1.0; s.weight_len()]);
    let bias = exact_buffer(&gpu, &[1.0; 4]);
    let output = exact_buffer(&gpu, &vec![0.0; s.output_len()]);
    let mapped_input = mapped(&gpu, s.input_len());
    let mut encoder = gpu.device().create_command_encoder(&Default::default());
    let r = plan.record_forward(
        &mut encoder,
        &ForwardBuffers {
            input: &mapped_input,
            weight: &weight,
            bias: Some(&bias),
            output: &output,
        },
    );
    assert!(
        matches!(r, Err(Error::BufferMapped { name: "input" })),
        "{r:?}"
    );
    // A buffer mapped by a completed map_async is refused too; unmapped, it is accepted.
    let readable = gpu.device().create_buffer(&wgpu::BufferDescriptor {
        label: Some("map read"),
        size: 16,
        usage: wgpu::BufferUsages::MAP_READ | wgpu::BufferUsages::COPY_DST,
        mapped_at_creation: false,
    });
    readable.map_async(wgpu::MapMode::Read, .., |r| r.unwrap());
    gpu.device()
        .poll(wgpu::PollType::wait_indefinitely())
        .unwrap();
    let r = pollster::block_on(buffer::read_back(&gpu, &readable, 4));
    assert!(
        matches!(
            r,
            Err(Error::BufferMapped { .. }) | Err(Error::MissingUsage { .. })
        ),
        "{r:?}"
    );
    let src = exact_buffer(&gpu, &[1.0, 2.0, 3.0, 4.0]);
    let mapped_src = mapped(&gpu, 4);
    let r = pollster::block_on(buffer::read_back(&gpu, &mapped_src, 4));
    assert!(
        matches!(
            r,
            Err(Error::BufferMapped {
                name: "read_back source"
            })
        ),
        "{r:?}"
    );
    mapped_src.unmap();
    drop(src);

    // Slots that are only copied from: the OWL and GrOWL `record_into` sources.
    let owl = OwlProx::new(&gpu).unwrap();
    let owl_plan = owl.plan(4).unwrap();
    let w = exact_buffer(&gpu, &[1.0, 0.5, 0.25, 0.0]);
    let out = exact_buffer(&gpu, &[0.0; 4]);
    let r = owl_plan.record_into(&mut encoder, &mapped(&gpu, 4), &w, &out, None);
    assert!(matches!(r, Err(Error::BufferMapped { name: "v" })), "{r:?}");
    let foreign = exact_buffer(&other, &[1.0, 2.0, 3.0, 4.0]);
    let r = owl_plan.record_into(&mut encoder, &foreign, &w, &out, None);
    assert!(matches!(r, Err(Error::Validation(_))), "OWL source: {r:?}");
    let growl = GrowlProx::new(&gpu).unwrap();
    let growl_plan = growl.plan(GroupLayout::Rows { rows: 2, cols: 2 }).unwrap();
    let gw = exact_buffer(&gpu, &[1.0, 0.5]);
    let r = growl_plan.record_into(&mut encoder, &foreign, &gw, &out, None);
    assert!(
        matches!(r, Err(Error::Validation(_))),
        "GrOWL source: {r:?}"
    );

    // A slot that is only cleared: the weight gradient of an empty batch.
    let empty_batch = Conv2dShape::new(0, 2, 2, [4, 4], [3, 3]);
    let empty_plan = conv.plan(&empty_batch).unwrap();
    let none = exact_buffer(&gpu, &[]);
    // A grad_weight buffer of `device`, mapped or not, and the empty plan's weight gradient
    // recorded into it.
    let grad_weight = |device: &wgpu::Device, label, mapped_at_creation| {
        device.create_buffer(&wgpu::BufferDescriptor {
            label: Some(label),
            size: empty_batch.weight_len() as u64 * 4,
            usage: wgpu::BufferUsages::STORAGE | wgpu::BufferUsages::COPY_DST,
            mapped_at_creation,
        })
    };
    let record = |encoder: &mut wgpu::CommandEncoder, grad_weight: &wgpu::Buffer| {
        let b = BackwardWeightBuffers {
            grad_output: &none,
            input: &none,
            grad_weight,
            grad_bias: None,
        };
        empty_plan.record_backward_weight(encoder, &b)
    };
    let foreign_gw = grad_weight(other.device(), "foreign grad_weight", false);
    let r = record(&mut encoder, &foreign_gw);
    assert!(matches!(r, Err(Error::Validation(_))), "grad_weight: {r:?}");
    let mapped_gw = grad_weight(gpu.device(), "mapped grad_weight", true);
    let r = record(&mut encoder, &mapped_gw);
    assert!(
        matches!(
            r,
            Err(Error::BufferMapped {
                name: "grad_weight"
            })
        ),
        "{r:?}"
    );
    // Nothing was recorded: the encoder still finishes and submits cleanly.
    common::forward_then_submit(&gpu, encoder, &plan, [&input, &weight, &bias, &output]);
}

/// Issue 13, section 5: fused calls named the inner call's roles (`src`, `values`, `tensor`)
/// instead of the caller's arguments.
#[test]
fn fused_calls_name_the_callers_arguments() {
    use tied::tying::{Reduction, TieLayout, TieMap, Ties};
    let _serial = common::serial();
    let gpu = common::gpu();
    let ties = Ties::new(gpu).unwrap();
    let map = TieMap::new(
        TieLayout::Scalar { len: 8 },
        2,
        vec![0, 1, 0, 1, 0, 1, 0, 1],
    )
    .unwrap();
    let plan = ties.plan(&map).unwrap();
    let small = exact_buffer(gpu, &[0.0; 4]);
    let tensor = exact_buffer(gpu, &[0.0; 8]);
    let values = exact_buffer(gpu, &[0.0; 2]);
    let tiny = exact_buffer(gpu, &[0.0; 1]);
    let mut encoder = gpu.device().create_command_encoder(&Default::default());
    let name_of = |r: tied::Result<()>| match r {
        Err(Error::BufferTooSmall { name, .. }) => name,
        Err(Error::Aliasing { name, other }) => {
            assert_eq!(other, "scratch_values");
            name
        }
        other => panic!("{other:?}"),
    };
    let sum = Reduction::Sum;
    let rb = |e: &mut _, g, v| plan.record_reduce_broadcast(e, g, v, sum);
    assert_eq!(name_of(rb(&mut encoder, &small, &values)), "grads");
    assert_eq!(name_of(rb(&mut encoder, &tensor, &tiny)), "scratch_values");
    let pr = |e: &mut _, g, v| plan.record_project(e, g, v);
    assert_eq!(name_of(pr(&mut encoder, &small, &values)), "weights");
    assert_eq!(name_of(pr(&mut encoder, &tensor, &tiny)), "scratch_values");
    let r = plan.record_reduce_broadcast(&mut encoder, &tensor, &tensor, sum);
    assert!(
        matches!(
            r,
            Err(Error::Aliasing {
                name: "scratch_values",
                other: "grads"
            })
        ),
        "{r:?}"
    );
    drop(encoder);
    let name_of = |r: tied::Result<Vec<f32>>| match r {
        Err(Error::LengthMismatch { name, .. }) => name,
        other => panic!("{other:?}"),
    };
    assert_eq!(
        name_of(ties.reduce_broadcast_blocking(&map, &[0.0; 3], sum)),
        "grads"
    );
    assert_eq!(name_of(ties.project_blocking(&map, &[0.0; 3])), "weights");
    assert_eq!(
        name_of(ties.broadcast_blocking(&map, &[0.0; 3], &[0.0; 2])),
        "target"
    );
    assert_eq!(
        name_of(ties.broadcast_blocking(&map, &[0.0; 8], &[0.0; 3])),
        "values"
    );
    assert_eq!(name_of(ties.reduce_blocking(&map, &[0.0; 3], sum)), "src");
}

/// Issue 13, section 5: a device created by `Gpu::new` already has its adapter's limits, so
/// a limit error there must not tell the user to request them; on an adopted device (whose
/// adapter the crate does not know) the hint is conditional.
#[test]
fn limit_hints_suggest_only_what_the_adapter_allows() {
    let _serial = common::serial();
    let owned = common::gpu();
    let limits = owned.device().limits();
    let sort = tied::sort::RadixSort::new(owned).unwrap();
    let keys = (limits.max_buffer_size / 4 + 1).min(u64::from(u32::MAX));
    if limits.max_buffer_size / 4 < u64::from(u32::MAX) {
        match sort.plan(keys as usize) {
            Err(Error::LimitExceeded { hint, .. }) => {
                assert!(!hint.contains("adapter"), "owned device: {hint}")
            }
            other => panic!("expected LimitExceeded, got {other:?}"),
        }
    }
    let conv = common::conv();
    let huge = Conv2dShape::new(64, 64, 64, [128, 128], [3, 3]).padding(1);
    if huge.input_len() as u64 * 4 > limits.max_storage_buffer_binding_size {
        match conv.plan(&huge) {
            Err(Error::LimitExceeded { hint, .. }) => {
                assert!(!hint.contains("adapter"), "owned device: {hint}")
            }
            other => panic!("expected LimitExceeded, got {other:?}"),
        }
    }
    let adopted = adopted();
    let conv = tied::conv::Conv2d::new(&adopted).unwrap();
    match conv.plan(&huge) {
        Err(Error::LimitExceeded { hint, .. }) => {
            assert!(
                hint.contains("if your adapter allows more"),
                "adopted: {hint}"
            )
        }
        other => panic!("expected LimitExceeded, got {other:?}"),
    }
}

/// Issue 13, section 5: shapes whose sizes saturate are shape errors on the host-slice
/// paths, not a length mismatch against `usize::MAX`.
#[test]
fn saturated_sizes_are_not_length_mismatches() {
    let _serial = common::serial();
    let conv = common::conv();
    let s = Conv2dShape::new(1 << 16, 1 << 16, 1 << 16, [1 << 16, 1 << 16], [1, 1]);
    let r = conv.forward_blocking(&s, &[], &[], None);
    assert!(matches!(r, Err(Error::Shape(_))), "{r:?}");
    let r = conv.backward_blocking(&s, &[], &[], &[]);
    assert!(matches!(r, Err(Error::Shape(_))), "{r:?}");
    let layout = tied::growl::GroupLayout::Rows {
        rows: usize::MAX,
        cols: 3,
    };
    let growl = tied::growl::GrowlProx::new(common::gpu()).unwrap();
    let r = growl.prox_blocking(&[1.0], layout, &[]);
    assert!(matches!(r, Err(Error::Shape(_))), "{r:?}");
}
