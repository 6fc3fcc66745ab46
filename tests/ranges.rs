//! Buffer ranges (`tied::buffer::BufferRange`): every op recorded on ranges of one shared
//! buffer, each tensor at an offset aligned to the device's
//! `min_storage_buffer_offset_alignment` with sentinel words (NaN payloads `0x7fc0dead`) in
//! the gaps, gives bitwise the results of the same op on whole buffers and leaves every
//! sentinel untouched; misaligned offsets, short ranges, ranges past the buffer or past the
//! binding limit, and overlapping ranges are the specific errors, with nothing recorded.

mod common;

use tied::buffer::{self, BufferRange};
use tied::conv::{
    BackwardDataBuffers, BackwardWeightBuffers, Conv2d, Conv2dShape, ForwardBuffers,
    LayoutTranspose,
};
use tied::growl::{GroupLayout, GrowlProx, OwlProx};
use tied::sort::{RadixSort, SortOrder};
use tied::train::{
    BatchNormBuffers, BatchNormGradBuffers, Linear, LinearShape, Sgd, Train, XentStats,
};
use tied::tying::{Enforcement, Reduction, TieLayout, TieMap, Ties, UNTIED};
use tied::{Error, Gpu, Result};

const SENTINEL: u32 = 0x7fc0_dead;

type Record<'r> = dyn Fn(&mut wgpu::CommandEncoder, &[BufferRange<'_>]) -> Result<()> + 'r;

/// Deterministic words: f32 values in [-1, 1) as bits.
fn floats(n: usize, seed: u64) -> Vec<u32> {
    let mut s = seed.wrapping_mul(0x9e37_79b9_7f4a_7c15) | 1;
    (0..n)
        .map(|_| {
            s ^= s << 13;
            s ^= s >> 7;
            s ^= s << 17;
            ((s >> 40) as f32 / (1u64 << 23) as f32 - 1.0).to_bits()
        })
        .collect()
}

/// Words below `bound` (labels, mask bits).
fn below(n: usize, bound: u32, seed: u64) -> Vec<u32> {
    floats(n, seed)
        .into_iter()
        .map(|w| (f32::from_bits(w).abs() * bound as f32) as u32 % bound)
        .collect()
}

/// Positive f32 words (norms, variances).
fn positive(n: usize, seed: u64) -> Vec<u32> {
    floats(n, seed)
        .into_iter()
        .map(|w| (f32::from_bits(w).abs() + 0.25).to_bits())
        .collect()
}

fn storage(gpu: &Gpu, words: &[u32]) -> wgpu::Buffer {
    let b = gpu.device().create_buffer(&wgpu::BufferDescriptor {
        label: Some("ranges test"),
        size: (words.len().max(1) * 4) as u64,
        usage: buffer::TENSOR_USAGE,
        mapped_at_creation: false,
    });
    gpu.queue().write_buffer(&b, 0, bytemuck::cast_slice(words));
    b
}

fn read(gpu: &Gpu, b: &wgpu::Buffer, words: usize) -> Vec<u32> {
    let v = pollster::block_on(buffer::read_back(gpu, b, words)).expect("read back");
    v.into_iter().map(f32::to_bits).collect()
}

/// Tensors at aligned offsets of one buffer, sentinels everywhere else (a gap of one
/// alignment before each tensor, padding after it, and a tail as large as the largest
/// tensor, so that shifted ranges stay inside the buffer).
struct Pool {
    buffer: wgpu::Buffer,
    slots: Vec<(u64, usize)>,
    init: Vec<u32>,
}

impl Pool {
    fn new(gpu: &Gpu, tensors: &[Vec<u32>]) -> Self {
        let align = u64::from(gpu.device().limits().min_storage_buffer_offset_alignment);
        let mut offset = align;
        let mut slots = Vec::new();
        for t in tensors {
            slots.push((offset, t.len()));
            offset = (offset + t.len() as u64 * 4).div_ceil(align) * align + align;
        }
        let tail = tensors.iter().map(Vec::len).max().unwrap_or(0) as u64 * 4;
        let mut init = vec![SENTINEL; ((offset + tail) / 4) as usize];
        for (t, &(at, len)) in tensors.iter().zip(&slots) {
            init[(at / 4) as usize..][..len].copy_from_slice(t);
        }
        Self {
            buffer: storage(gpu, &init),
            slots,
            init,
        }
    }

    fn ranges(&self) -> Vec<BufferRange<'_>> {
        self.slots
            .iter()
            .map(|&(at, len)| BufferRange::new(&self.buffer, at, len as u64 * 4))
            .collect()
    }

    fn contents(&self, gpu: &Gpu) -> Vec<u32> {
        read(gpu, &self.buffer, self.init.len())
    }
}

fn submit(gpu: &Gpu, encoder: wgpu::CommandEncoder) {
    gpu.queue().submit([encoder.finish()]);
}

/// Runs `record` on whole buffers, then on ranges of one pool, and compares every tensor
/// bitwise and every sentinel.
fn same_on_ranges(gpu: &Gpu, op: &str, tensors: &[Vec<u32>], record: &Record<'_>) {
    let wholes: Vec<wgpu::Buffer> = tensors.iter().map(|t| storage(gpu, t)).collect();
    let ranges: Vec<BufferRange> = wholes.iter().map(BufferRange::from).collect();
    let mut enc = gpu.device().create_command_encoder(&Default::default());
    record(&mut enc, &ranges).unwrap_or_else(|e| panic!("{op} on whole buffers: {e}"));
    submit(gpu, enc);
    let expected: Vec<Vec<u32>> = wholes
        .iter()
        .zip(tensors)
        .map(|(b, t)| read(gpu, b, t.len()))
        .collect();
    assert!(
        expected.iter().zip(tensors).any(|(e, t)| e != t),
        "{op}: the op changed nothing, so the comparison would prove nothing"
    );
    let pool = Pool::new(gpu, tensors);
    let mut enc = gpu.device().create_command_encoder(&Default::default());
    record(&mut enc, &pool.ranges()).unwrap_or_else(|e| panic!("{op} on ranges: {e}"));
    submit(gpu, enc);
    let got = pool.contents(gpu);
    let mut inside = vec![false; got.len()];
    for (i, (&(at, len), want)) in pool.slots.iter().zip(&expected).enumerate() {
        let at = (at / 4) as usize;
        let slice = &got[at..at + len];
        if let Some(k) = (0..len).find(|&k| slice[k] != want[k]) {
            panic!(
                "{op}: tensor {i} word {k} is {:#010x} on a range, {:#010x} on a whole buffer",
                slice[k], want[k]
            );
        }
        inside[at..at + len].iter_mut().for_each(|x| *x = true);
    }
    for (w, (&word, inside)) in got.iter().zip(&inside).enumerate() {
        assert!(
            *inside || word == SENTINEL,
            "{op}: word {w} outside every range became {word:#010x}"
        );
    }
}

/// The bad-range errors of `record` on a pool of `tensors` (`names` as the op names them):
/// each is the specific `Err`, and nothing is recorded (the pool is unchanged after the
/// encoder is submitted). `out` is a written tensor, `input` one it reads.
fn bad_ranges(
    gpu: &Gpu,
    op: &str,
    tensors: &[Vec<u32>],
    names: &[&str],
    (out, input): (usize, usize),
    record: &Record<'_>,
) {
    let pool = Pool::new(gpu, tensors);
    let good = pool.ranges();
    let align = u64::from(gpu.device().limits().min_storage_buffer_offset_alignment);
    assert!(
        align >= 8,
        "{op}: with {align}-byte alignment no offset is misaligned for a binding"
    );
    let shifted = |i: usize, by: u64, shrink: u64| {
        let mut v = good.clone();
        v[i] = BufferRange::new(&pool.buffer, good[i].offset() + by, good[i].size() - shrink);
        v
    };
    let mut enc = gpu.device().create_command_encoder(&Default::default());
    for (i, name) in names.iter().enumerate() {
        // Off by 2 bytes: no binding or copy can start there; off by 4 or half the alignment:
        // a copy could, a storage binding cannot.
        for by in [2, 4, align / 2].into_iter().filter(|by| by % align != 0) {
            let want = if by % 4 != 0 { 4 } else { align };
            match record(&mut enc, &shifted(i, by, 0)) {
                Err(Error::MisalignedRange {
                    name: n,
                    what: "offset",
                    value,
                    alignment,
                    ..
                }) if n == *name && value == good[i].offset() + by && alignment == want => {}
                r => panic!("{op}: `{name}` at offset +{by}: {r:?}"),
            }
        }
        match record(&mut enc, &shifted(i, 0, 4)) {
            Err(Error::BufferTooSmall { name: n, .. }) if n == *name => {}
            r => panic!("{op}: `{name}` 4 bytes short: {r:?}"),
        }
        let mut past = good.clone();
        past[i] = BufferRange::new(&pool.buffer, pool.buffer.size() - align, good[i].size());
        if good[i].size() > align {
            match record(&mut enc, &past) {
                Err(Error::RangeOutOfBounds { name: n, .. }) if n == *name => {}
                r => panic!("{op}: `{name}` past the buffer's end: {r:?}"),
            }
        }
    }
    let mut overlap = good.clone();
    overlap[out] = BufferRange::new(&pool.buffer, good[input].offset(), good[out].size());
    match record(&mut enc, &overlap) {
        Err(Error::Aliasing { .. }) => {}
        r => panic!("{op}: `{}` over `{}`: {r:?}", names[out], names[input]),
    }
    // Overlapping by one word at the end of the input.
    let mut tail = good.clone();
    let end = good[input].offset() + good[input].size();
    let at = (end - 4) / align * align;
    if at != good[input].offset() || good[input].size() <= align {
        tail[out] = BufferRange::new(&pool.buffer, at, good[out].size());
        match record(&mut enc, &tail) {
            Err(Error::Aliasing { .. }) => {}
            r => panic!(
                "{op}: `{}` over the end of `{}`: {r:?}",
                names[out], names[input]
            ),
        }
    }
    submit(gpu, enc);
    assert!(
        pool.contents(gpu) == pool.init,
        "{op}: a refused call recorded something"
    );
}

fn conv() -> &'static Conv2d {
    common::conv()
}

#[test]
fn conv_on_ranges() {
    let _serial = common::serial();
    let gpu = common::gpu();
    for shape in [
        Conv2dShape::new(2, 3, 4, [8, 8], [3, 3])
            .padding(1)
            .with_bias(true),
        // Strided: one launch per stride phase plus the zero pass.
        Conv2dShape::new(1, 2, 3, [9, 9], [3, 3])
            .stride(2)
            .with_bias(true),
    ] {
        let plan = conv().plan(&shape).unwrap();
        let (x, w) = (shape.input_len(), shape.weight_len());
        let (y, b) = (shape.output_len(), shape.bias_len());
        let fwd = [floats(x, 1), floats(w, 2), floats(b, 3), floats(y, 4)];
        let forward = |e: &mut wgpu::CommandEncoder, r: &[BufferRange]| {
            let bufs = ForwardBuffers {
                input: r[0],
                weight: r[1],
                bias: Some(r[2]),
                output: r[3],
            };
            plan.record_forward(e, &bufs)
        };
        same_on_ranges(gpu, "conv forward", &fwd, &forward);
        let names = ["input", "weight", "bias", "output"];
        bad_ranges(gpu, "conv forward", &fwd, &names, (3, 0), &forward);
        let data = [floats(y, 5), floats(w, 6), floats(x, 7)];
        let backward_data = |e: &mut wgpu::CommandEncoder, r: &[BufferRange]| {
            let bufs = BackwardDataBuffers {
                grad_output: r[0],
                weight: r[1],
                grad_input: r[2],
            };
            plan.record_backward_data(e, &bufs)
        };
        same_on_ranges(gpu, "conv backward data", &data, &backward_data);
        let names = ["grad_output", "weight", "grad_input"];
        bad_ranges(
            gpu,
            "conv backward data",
            &data,
            &names,
            (2, 1),
            &backward_data,
        );
        let weight = [floats(y, 8), floats(x, 9), floats(w, 10), floats(b, 11)];
        let backward_weight = |e: &mut wgpu::CommandEncoder, r: &[BufferRange]| {
            let bufs = BackwardWeightBuffers {
                grad_output: r[0],
                input: r[1],
                grad_weight: r[2],
                grad_bias: Some(r[3]),
            };
            plan.record_backward_weight(e, &bufs)
        };
        same_on_ranges(gpu, "conv backward weight", &weight, &backward_weight);
        let names = ["grad_output", "input", "grad_weight", "grad_bias"];
        bad_ranges(
            gpu,
            "conv backward weight",
            &weight,
            &names,
            (3, 0),
            &backward_weight,
        );
    }
}

#[test]
fn layout_transposes_on_ranges() {
    let _serial = common::serial();
    let gpu = common::gpu();
    let plan = LayoutTranspose::new(gpu)
        .unwrap()
        .plan([2, 3, 5, 7])
        .unwrap();
    let t = [floats(210, 12), floats(210, 13)];
    let to_nhwc =
        |e: &mut wgpu::CommandEncoder, r: &[BufferRange]| plan.record_nchw_to_nhwc(e, r[0], r[1]);
    let to_nchw =
        |e: &mut wgpu::CommandEncoder, r: &[BufferRange]| plan.record_nhwc_to_nchw(e, r[0], r[1]);
    same_on_ranges(gpu, "nchw to nhwc", &t, &to_nhwc);
    same_on_ranges(gpu, "nhwc to nchw", &t, &to_nchw);
    bad_ranges(gpu, "nchw to nhwc", &t, &["src", "dst"], (1, 0), &to_nhwc);
}

/// A scalar map (scattered members, untied ones) and a row map.
fn tie_maps() -> Vec<TieMap> {
    let ids = below(3000, 40, 14)
        .into_iter()
        .map(|g| if g % 7 == 0 { UNTIED } else { g })
        .collect();
    vec![
        TieMap::new(TieLayout::Scalar { len: 3000 }, 40, ids).unwrap(),
        TieMap::new(TieLayout::rows(6, 64), 3, vec![0, 1, 0, UNTIED, 2, 1]).unwrap(),
    ]
}

fn tying_on(gpu: &Gpu, maps: &[TieMap]) {
    let ties = Ties::new(gpu).unwrap();
    for map in maps {
        let plan = ties.plan(map).unwrap();
        let (p, v) = (map.layout().params_len(), map.values_len());
        let t = [floats(p, 15), floats(v, 16)];
        let reduce = |e: &mut wgpu::CommandEncoder, r: &[BufferRange]| {
            plan.record_reduce(e, r[0], r[1], Reduction::Mean)
        };
        let broadcast =
            |e: &mut wgpu::CommandEncoder, r: &[BufferRange]| plan.record_broadcast(e, r[0], r[1]);
        let fused = |e: &mut wgpu::CommandEncoder, r: &[BufferRange]| {
            plan.record_reduce_broadcast(e, r[0], r[1], Reduction::Sum)
        };
        let project =
            |e: &mut wgpu::CommandEncoder, r: &[BufferRange]| plan.record_project(e, r[0], r[1]);
        let enforce = |e: &mut wgpu::CommandEncoder, r: &[BufferRange]| {
            Enforcement::Gradient.record_gradients(&plan, e, r[0], r[1])
        };
        let windows = plan.windows();
        same_on_ranges(gpu, &format!("tie reduce ({windows} windows)"), &t, &reduce);
        same_on_ranges(gpu, "tie broadcast", &t, &broadcast);
        same_on_ranges(gpu, "tie reduce-broadcast", &t, &fused);
        same_on_ranges(gpu, "tie project", &t, &project);
        same_on_ranges(gpu, "enforcement (gradient)", &t, &enforce);
        bad_ranges(gpu, "tie reduce", &t, &["src", "values"], (1, 0), &reduce);
        bad_ranges(
            gpu,
            "tie broadcast",
            &t,
            &["target", "values"],
            (0, 1),
            &broadcast,
        );
    }
}

#[test]
fn tying_on_ranges() {
    let _serial = common::serial();
    tying_on(common::gpu(), &tie_maps());
}

/// A device whose bindings hold 16 MiB (the least the crate accepts): tensors past that are
/// bound in windows, at offsets from the range's start.
fn small_binding_gpu() -> Gpu {
    common::gpu_with_binding_limit(16 << 20)
}

/// f32 values past one 16 MiB binding.
const PAST_BINDING: usize = 4_300_000;

#[test]
fn windowed_plans_on_ranges() {
    let _serial = common::serial();
    let gpu = small_binding_gpu();
    let ids = below(PAST_BINDING, 300, 17);
    let len = PAST_BINDING as u32;
    let map = TieMap::new(TieLayout::Scalar { len }, 300, ids).unwrap();
    let plan = Ties::new(&gpu).unwrap().plan(&map).unwrap();
    assert!(plan.windows() > 1, "the tie plan must be windowed here");
    tying_on(&gpu, &[map]);
    let layout = GroupLayout::Rows {
        rows: 4300,
        cols: 1000,
    };
    let growl = GrowlProx::new(&gpu).unwrap().plan(layout).unwrap();
    assert!(growl.windows() > 1, "the GrOWL plan must be windowed here");
    let t = [floats(layout.len(), 20), prox_weights(4300)];
    let record =
        |e: &mut wgpu::CommandEncoder, r: &[BufferRange]| growl.record(e, r[0], r[1], None);
    same_on_ranges(&gpu, "windowed GrOWL", &t, &record);
}

#[test]
fn binding_limit_of_ranges() {
    let _serial = common::serial();
    let gpu = small_binding_gpu();
    let relu = Train::new(&gpu).unwrap().relu(PAST_BINDING).unwrap();
    let t = [floats(PAST_BINDING, 21), floats(PAST_BINDING, 22)];
    let pool = Pool::new(&gpu, &t);
    let r = pool.ranges();
    let mut enc = gpu.device().create_command_encoder(&Default::default());
    match relu.record_forward(&mut enc, r[0], r[1]) {
        Err(Error::LimitExceeded {
            limit: "max_storage_buffer_binding_size",
            needed,
            ..
        }) if needed == PAST_BINDING as u64 * 4 => {}
        r => panic!("a range past one binding: {r:?}"),
    }
    submit(&gpu, enc);
    assert!(
        pool.contents(&gpu) == pool.init,
        "a refused call recorded something"
    );
}

#[test]
fn sort_on_ranges() {
    let _serial = common::serial();
    let gpu = common::gpu();
    let sort = RadixSort::new(gpu).unwrap();
    for n in [700, 5000] {
        let plan = sort.plan(n).unwrap();
        let t = [floats(n, 23), below(n, 1 << 30, 24)];
        let pairs = |e: &mut wgpu::CommandEncoder, r: &[BufferRange]| {
            plan.record(e, r[0], r[1], SortOrder::Descending)
        };
        let keys = |e: &mut wgpu::CommandEncoder, r: &[BufferRange]| {
            plan.record(e, r[0], None, SortOrder::Ascending)
        };
        same_on_ranges(gpu, "sort pairs", &t, &pairs);
        same_on_ranges(gpu, "sort keys", &t[..1], &keys);
        bad_ranges(gpu, "sort pairs", &t, &["keys", "values"], (1, 0), &pairs);
    }
}

/// Non-negative, non-increasing prox weights.
fn prox_weights(n: usize) -> Vec<u32> {
    (0..n)
        .map(|i| (0.3 * (n - i) as f32 / n as f32).to_bits())
        .collect()
}

#[test]
fn growl_on_ranges() {
    let _serial = common::serial();
    let gpu = common::gpu();
    let growl = GrowlProx::new(gpu).unwrap();
    let owl = OwlProx::new(gpu).unwrap().plan(900).unwrap();
    let t = [floats(900, 25), prox_weights(900), floats(900, 26)];
    let record = |e: &mut wgpu::CommandEncoder, r: &[BufferRange]| owl.record(e, r[0], r[1], r[2]);
    let into = |e: &mut wgpu::CommandEncoder, r: &[BufferRange]| {
        owl.record_into(e, r[0], r[1], r[2], None)
    };
    same_on_ranges(gpu, "OWL prox with blocks", &t, &record);
    same_on_ranges(gpu, "OWL prox into", &t, &into);
    bad_ranges(gpu, "OWL prox", &t, &["v", "w", "blocks"], (0, 1), &record);
    bad_ranges(gpu, "OWL prox into", &t, &["v", "w", "out"], (2, 0), &into);
    for layout in [
        GroupLayout::Rows { rows: 24, cols: 40 },
        GroupLayout::Columns { rows: 30, cols: 20 },
    ] {
        let plan = growl.plan(layout).unwrap();
        let (n, g) = (layout.len(), layout.groups());
        let t = [floats(n, 27), prox_weights(g), floats(n, 28), floats(g, 29)];
        let record =
            |e: &mut wgpu::CommandEncoder, r: &[BufferRange]| plan.record(e, r[0], r[1], r[3]);
        let into = |e: &mut wgpu::CommandEncoder, r: &[BufferRange]| {
            plan.record_into(e, r[0], r[1], r[2], None)
        };
        same_on_ranges(gpu, "GrOWL prox", &t, &record);
        same_on_ranges(gpu, "GrOWL prox into", &t, &into);
        bad_ranges(
            gpu,
            "GrOWL prox into",
            &t[..3],
            &["matrix", "w", "out"],
            (2, 0),
            &into,
        );
    }
}

#[test]
fn elementwise_train_ops_on_ranges() {
    let _serial = common::serial();
    let gpu = common::gpu();
    let train = Train::new(gpu).unwrap();
    let relu = train.relu(1000).unwrap();
    let t = [floats(1000, 30), floats(1000, 31), floats(1000, 32)];
    let forward =
        |e: &mut wgpu::CommandEncoder, r: &[BufferRange]| relu.record_forward(e, r[0], r[1]);
    let backward =
        |e: &mut wgpu::CommandEncoder, r: &[BufferRange]| relu.record_backward(e, r[0], r[1], r[2]);
    same_on_ranges(gpu, "relu forward", &t[..2], &forward);
    same_on_ranges(gpu, "relu backward", &t, &backward);
    bad_ranges(
        gpu,
        "relu backward",
        &t,
        &["y", "dy", "dx"],
        (2, 1),
        &backward,
    );

    let layout = GroupLayout::Rows { rows: 20, cols: 50 };
    let hyper = Sgd {
        lr: 0.1,
        momentum: 0.9,
        weight_decay: 0.01,
    };
    let sgd = train.sgd(1000, Some(layout), hyper).unwrap();
    let t = [
        floats(1000, 33),
        below(20, 2, 34),
        floats(1000, 35),
        floats(1000, 36),
    ];
    let step = |e: &mut wgpu::CommandEncoder, r: &[BufferRange]| {
        sgd.record_step(e, r[0], r[1], r[2], r[3])
    };
    same_on_ranges(gpu, "sgd step", &t, &step);
    let names = ["grad", "mask", "weight", "velocity"];
    bad_ranges(gpu, "sgd step", &t, &names, (2, 0), &step);

    let mut mask = train.mask(layout).unwrap();
    mask.set_threshold(0.5).unwrap();
    let t = [below(20, 2, 37), floats(1000, 38)];
    let apply = |e: &mut wgpu::CommandEncoder, r: &[BufferRange]| mask.record_apply(e, r[0], r[1]);
    same_on_ranges(gpu, "mask apply", &t, &apply);
    bad_ranges(gpu, "mask apply", &t, &["mask", "tensor"], (1, 0), &apply);
    let t = [positive(20, 39), vec![1; 20]];
    let update =
        |e: &mut wgpu::CommandEncoder, r: &[BufferRange]| mask.record_update(e, r[0], r[1]);
    same_on_ranges(gpu, "mask update", &t, &update);
}

#[test]
fn layer_train_ops_on_ranges() {
    let _serial = common::serial();
    let gpu = common::gpu();
    let train = Train::new(gpu).unwrap();
    let (batch, classes) = (8, 10);
    let xent = train.softmax_xent(batch, classes).unwrap();
    let t = [
        floats(batch * classes, 40),
        below(batch, classes as u32, 41),
        floats(batch * classes, 42),
        floats(batch * 2, 43),
    ];
    let record =
        |e: &mut wgpu::CommandEncoder, r: &[BufferRange]| xent.record(e, r[0], r[1], r[2], r[3]);
    same_on_ranges(gpu, "softmax xent", &t, &record);
    let names = ["logits", "labels", "dlogits", "per_sample"];
    bad_ranges(gpu, "softmax xent", &t, &names, (2, 0), &record);
    let t = [below(batch * 2, 2, 44), vec![0; XentStats::WORDS]];
    let accumulate =
        |e: &mut wgpu::CommandEncoder, r: &[BufferRange]| xent.record_accumulate(e, r[0], r[1]);
    same_on_ranges(gpu, "xent accumulate", &t, &accumulate);

    let f = 16;
    let bn = train.batch_norm(batch, f, 1e-5, 0.9).unwrap();
    let mut running = floats(f, 45);
    running.extend(positive(f, 46));
    let t = [
        floats(batch * f, 47),
        floats(2 * f, 48),
        floats(batch * f, 49),
        floats(2 * f, 50),
        running.clone(),
    ];
    let forward = |e: &mut wgpu::CommandEncoder, r: &[BufferRange]| {
        let b = BatchNormBuffers {
            x: r[0],
            affine: r[1],
            y: r[2],
            saved: r[3],
            running: r[4],
        };
        bn.record_forward(e, &b)
    };
    same_on_ranges(gpu, "batch norm forward", &t, &forward);
    let names = ["x", "affine", "y", "saved", "running"];
    bad_ranges(gpu, "batch norm forward", &t, &names, (2, 0), &forward);
    let eval = [t[0].clone(), t[1].clone(), running, t[2].clone()];
    let record_eval =
        |e: &mut wgpu::CommandEncoder, r: &[BufferRange]| bn.record_eval(e, r[0], r[1], r[2], r[3]);
    same_on_ranges(gpu, "batch norm eval", &eval, &record_eval);
    let mut saved = floats(f, 51);
    saved.extend(positive(f, 52));
    let t = [
        floats(batch * f, 53),
        floats(batch * f, 54),
        floats(2 * f, 55),
        saved,
        floats(batch * f, 56),
        floats(2 * f, 57),
    ];
    let backward = |e: &mut wgpu::CommandEncoder, r: &[BufferRange]| {
        let b = BatchNormGradBuffers {
            x: r[0],
            dy: r[1],
            affine: r[2],
            saved: r[3],
            dx: r[4],
            daffine: r[5],
        };
        bn.record_backward(e, &b)
    };
    same_on_ranges(gpu, "batch norm backward", &t, &backward);

    let shape = LinearShape::new(8, 24, 12).with_bias(true);
    let linear = Linear::new(conv()).plan(shape).unwrap();
    let (x, w, y) = (8 * 24, 12 * 24, 8 * 12);
    let t = [floats(x, 58), floats(w, 59), floats(12, 60), floats(y, 61)];
    let forward = |e: &mut wgpu::CommandEncoder, r: &[BufferRange]| {
        linear.record_forward(e, r[0], r[1], r[2], r[3])
    };
    same_on_ranges(gpu, "linear forward", &t, &forward);
    let t = [floats(y, 62), floats(w, 63), floats(x, 64)];
    let input = |e: &mut wgpu::CommandEncoder, r: &[BufferRange]| {
        linear.record_backward_input(e, r[0], r[1], r[2])
    };
    same_on_ranges(gpu, "linear backward input", &t, &input);
    let t = [floats(y, 65), floats(x, 66), floats(w, 67), floats(12, 68)];
    let weight = |e: &mut wgpu::CommandEncoder, r: &[BufferRange]| {
        linear.record_backward_weight(e, r[0], r[1], r[2], r[3])
    };
    same_on_ranges(gpu, "linear backward weight", &t, &weight);
}

#[test]
fn data_gather_on_ranges() {
    let _serial = common::serial();
    let gpu = common::gpu();
    let (samples, dim, batch) = (40, 12, 8);
    let (_, _, set) = common::byte_set(gpu, samples, dim, 37);
    let plan = Train::new(gpu)
        .unwrap()
        .gather(&set, batch, 1.0 / 255.0)
        .unwrap();
    plan.set_order(&tied::train::shuffle(samples, 3, 0))
        .unwrap();
    let t = [floats(batch * dim, 69), floats(batch, 70)];
    let record =
        |e: &mut wgpu::CommandEncoder, r: &[BufferRange]| plan.record(e, &set, 2, r[0], r[1]);
    same_on_ranges(gpu, "data gather", &t, &record);
    bad_ranges(gpu, "data gather", &t, &["x", "labels"], (1, 0), &record);
}

/// Whole buffers and `wgpu::BufferSlice`s are ranges too: a slice of the pool gives the
/// same bits as the range it names.
#[test]
fn slices_are_ranges() {
    let _serial = common::serial();
    let gpu = common::gpu();
    let relu = Train::new(gpu).unwrap().relu(300).unwrap();
    let t = [floats(300, 71), floats(300, 72)];
    let pool = Pool::new(gpu, &t);
    let r = pool.ranges();
    let mut enc = gpu.device().create_command_encoder(&Default::default());
    let slice = |r: BufferRange<'_>| r.offset()..r.offset() + r.size();
    relu.record_forward(
        &mut enc,
        pool.buffer.slice(slice(r[0])),
        pool.buffer.slice(slice(r[1])),
    )
    .unwrap();
    submit(gpu, enc);
    let got = pool.contents(gpu);
    let y = &got[(r[1].offset() / 4) as usize..][..300];
    for (k, (&yk, &xk)) in y.iter().zip(&t[0]).enumerate() {
        let want = f32::from_bits(xk).max(0.0);
        assert_eq!(yk, (want + 0.0).to_bits(), "relu word {k}");
    }
}

/// The shared-buffer twins (built at run time for passes that bind one buffer read-only and
/// writable) parse and validate, and declare every storage binding `read_write`.
#[test]
fn shared_buffer_twins_validate() {
    use naga::valid::{Capabilities, ValidationFlags, Validator};
    let mut modules = std::collections::BTreeMap::new();
    for k in tied::kernels::table() {
        modules.entry(k.module).or_insert(k.shared_source);
    }
    assert!(
        modules.len() > 10,
        "the kernel table lists {} modules",
        modules.len()
    );
    for (name, source) in modules {
        let module = naga::front::wgsl::parse_str(&source)
            .unwrap_or_else(|e| panic!("{name}: {}", e.emit_to_string(&source)));
        Validator::new(ValidationFlags::all(), Capabilities::all())
            .validate(&module)
            .unwrap_or_else(|e| panic!("{name}: {e:?}"));
        for (_, var) in module.global_variables.iter() {
            if let naga::AddressSpace::Storage { access } = var.space {
                assert!(
                    access.contains(naga::StorageAccess::STORE),
                    "{name}: `{:?}` is still read-only in the twin",
                    var.name
                );
            }
        }
    }
}
