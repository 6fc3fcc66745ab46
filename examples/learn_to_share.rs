//! Learning to share (Zhang et al., ICLR 2018), end to end on the GPU, on real data.
//!
//! ```text
//! cargo run --release --example learn_to_share -- --quick
//! cargo run --release --example learn_to_share -- [--data DIR] [--model mlp|cnn]
//!     [--rows baseline,weight_decay,group_lasso,group_lasso_l2,growl,growl_l2]
//!     [--enforce epoch|step|grad] [--quick] [--seed N] [--json] [--out DIR]
//!     [--epochs P1,P2]
//! ```
//!
//! Phase 1 trains with a group regulariser whose prox (GrOWL, or group lasso) runs once per
//! epoch on the GPU, masking groups whose norm falls to f32 epsilon for good; the surviving
//! groups are clustered (the paper's similarity, on the GPU, and affinity propagation); phase 2 retrains
//! with the masks kept and the ties enforced as `--enforce` says: each cluster's groups
//! replaced by their mean once per epoch (the default, the paper's MNIST) or after every step
//! (its VGG), or tied gradients every step. Models: the paper's MLP (GrOWL on fc1's input
//! groups) or a small conv net (GrOWL on conv2's input channels and on fc's input groups).
//! Prints the paper's table (sparsity, sharing, compression, accuracy), wall time per phase,
//! the step time split, adapter and backend; `--json` prints one object per row. Plots go to
//! `--out` (default `target/learn_to_share`).
//!
//! Data: a folder of the four MNIST-format IDX files (gzipped or not); by default
//! Fashion-MNIST from the Debian package `dataset-fashion-mnist`.

#[path = "learn_to_share/model/mod.rs"]
mod model;
#[path = "learn_to_share/plots.rs"]
mod plots;

use std::path::PathBuf;
use std::time::Instant;

use indicatif::{ProgressBar, ProgressStyle};
use model::train_loop::{Core, Trainer};
use model::{cnn, mlp, Model, Protocol, Row, RowResult};
use tied::share::idx;
use tied::tying::Enforcement;

const DEFAULT_DATA: &str = "/usr/share/datasets/fashion-mnist";

struct Args {
    data: PathBuf,
    model: String,
    rows: Vec<Row>,
    quick: bool,
    seed: u64,
    json: bool,
    out: PathBuf,
    epochs: Option<[u32; 2]>,
    prox_scale: Option<f32>,
    enforce: Enforcement,
}

fn parse_args() -> Result<Args, String> {
    let mut args = Args {
        data: PathBuf::from(DEFAULT_DATA),
        model: "mlp".into(),
        rows: Row::ALL.to_vec(),
        quick: false,
        seed: 1,
        json: false,
        out: PathBuf::from("target/learn_to_share"),
        epochs: None,
        prox_scale: None,
        enforce: Enforcement::Epoch,
    };
    let mut it = std::env::args().skip(1);
    while let Some(a) = it.next() {
        let mut value = |name: &str| it.next().ok_or(format!("{name} needs a value"));
        match a.as_str() {
            "--data" => args.data = PathBuf::from(value("--data")?),
            "--model" => args.model = value("--model")?,
            "--rows" => {
                args.rows = value("--rows")?
                    .split(',')
                    .map(|r| Row::parse(r).ok_or(format!("unknown row `{r}`")))
                    .collect::<Result<_, _>>()?
            }
            "--quick" => args.quick = true,
            "--seed" => {
                args.seed = value("--seed")?
                    .parse()
                    .map_err(|e| format!("--seed: {e}"))?
            }
            "--json" => args.json = true,
            "--out" => args.out = PathBuf::from(value("--out")?),
            "--epochs" => {
                let v = value("--epochs")?;
                let parts: Vec<u32> = v
                    .split(',')
                    .map(|p| p.parse().map_err(|e| format!("--epochs: {e}")))
                    .collect::<Result<_, _>>()?;
                match parts[..] {
                    [a, b] => args.epochs = Some([a, b]),
                    _ => return Err("--epochs takes P1,P2".into()),
                }
            }
            "--prox-scale" => {
                args.prox_scale = Some(
                    value("--prox-scale")?
                        .parse()
                        .map_err(|e| format!("--prox-scale: {e}"))?,
                )
            }
            "--enforce" => {
                let v = value("--enforce")?;
                args.enforce = Enforcement::parse(&v)
                    .ok_or(format!("--enforce {v}: one of epoch, step, grad"))?
            }
            "--help" | "-h" => {
                println!("{}", include_str!("learn_to_share/usage.txt"));
                std::process::exit(0);
            }
            other => return Err(format!("unknown argument `{other}` (try --help)")),
        }
    }
    if !["mlp", "cnn"].contains(&args.model.as_str()) {
        return Err(format!("--model {}: one of mlp, cnn", args.model));
    }
    Ok(args)
}

fn main() {
    if let Err(e) = run() {
        eprintln!("learn_to_share: {e}");
        std::process::exit(1);
    }
}

fn run() -> Result<(), Box<dyn std::error::Error>> {
    let args = parse_args()?;
    let data = idx::load_dir(&args.data)?;
    let gpu = tied::Gpu::new_blocking()?;
    let info = gpu.adapter_info().clone();
    let protocol = if args.quick {
        Protocol::quick_for(&args.model)
    } else {
        Protocol::full()
    }
    .with_epochs(args.epochs)
    .with_prox_scale(args.prox_scale);
    if !args.json {
        println!(
            "learning to share: {} on {} ({:?}), data {} ({} train / {} test used), seed {}",
            args.model,
            info.name,
            info.backend,
            args.data.display(),
            protocol.train_samples.min(data.train.labels.len()),
            protocol.test_samples.min(data.test.labels.len()),
            args.seed
        );
        println!(
            "protocol: {}; epochs {} + {}, batch {}, lr {} x {}^(epoch / {}), momentum {}",
            if args.quick {
                "quick"
            } else {
                "full (the paper's)"
            },
            protocol.epochs[0],
            protocol.epochs[1],
            protocol.batch,
            protocol.lr0,
            protocol.decay,
            protocol.decay_every,
            protocol.momentum
        );
        println!(
            "phase 2 ties enforced: {}",
            match args.enforce {
                Enforcement::Epoch => "epoch (group averaging once per epoch, the paper's MNIST)",
                Enforcement::Step => "step (group averaging after every step, the paper's VGG)",
                Enforcement::Gradient => "grad (tied gradients: cluster means before every step)",
            }
        );
    }
    let mut model: Box<dyn Model> = match args.model.as_str() {
        "cnn" => {
            let core = Core::new(&gpu, &data, &protocol, &cnn::params())?;
            let net = cnn::Cnn::new(&core)?;
            Box::new(Trainer { core, net })
        }
        _ => {
            let core = Core::new(&gpu, &data, &protocol, &mlp::params())?;
            let net = mlp::Mlp::new(&core)?;
            Box::new(Trainer { core, net })
        }
    };
    let step = model.time_step(args.seed)?;
    let mut results: Vec<RowResult> = Vec::new();
    for &row in &args.rows {
        let bar = (!args.json).then(|| {
            let total = protocol.epochs[0] + protocol.epochs[1];
            let bar = ProgressBar::new(u64::from(total));
            bar.set_style(
                ProgressStyle::with_template("{prefix:>15} [{bar:30}] {pos}/{len} epochs {msg}")
                    .expect("template")
                    .progress_chars("=> "),
            );
            bar.set_prefix(row.name());
            bar
        });
        let start = Instant::now();
        let result = model.run_row(row, args.seed, args.enforce, &mut |epoch, msg: &str| {
            if let Some(bar) = &bar {
                bar.set_position(u64::from(epoch));
                bar.set_message(msg.to_string());
            }
        })?;
        if let Some(bar) = bar {
            bar.finish_with_message(format!("{:.1} s", start.elapsed().as_secs_f64()));
        }
        if args.json {
            println!("{}", result.json(&args.model, &info, &step));
        }
        results.push(result);
    }
    std::fs::create_dir_all(&args.out)?;
    let written = plots::write_all(&args.out, &results)?;
    if !args.json {
        println!();
        model::print_table(&results);
        println!();
        println!(
            "step (batch {}): {:.2} ms wall, {:.2} ms GPU ({}), {:.0}% of the wall in kernels",
            protocol.batch,
            step.wall_ms,
            step.gpu_ms,
            step.method,
            100.0 * step.gpu_ms / step.wall_ms
        );
        println!("adapter: {} ({:?})", info.name, info.backend);
        println!("plots: {}", written.join(", "));
    }
    Ok(())
}
