//! The demo's figures, as PNG: accuracy and compression per epoch per row, each grouped
//! layer's group norms after phase 1, and the similarity of the nonzero groups ordered by cluster (the paper's
//! figure). Text needs a TrueType font: DejaVu Sans (Debian's fonts-dejavu-core) when present,
//! else the figures are drawn without labels.

use std::path::Path;

use plotters::prelude::*;

use crate::model::RowResult;

type Result<T> = std::result::Result<T, Box<dyn std::error::Error>>;

/// A figure of one value per epoch: file, label, the value.
type PerEpoch = (
    &'static str,
    &'static str,
    fn(&crate::model::EpochPoint) -> f64,
);

const FONT: &str = "/usr/share/fonts/truetype/dejavu/DejaVuSans.ttf";

fn font_ready() -> bool {
    static READY: std::sync::OnceLock<bool> = std::sync::OnceLock::new();
    *READY.get_or_init(|| match std::fs::read(FONT) {
        Ok(bytes) => {
            let bytes: &'static [u8] = Box::leak(bytes.into_boxed_slice());
            plotters::style::register_font("sans-serif", FontStyle::Normal, bytes).is_ok()
        }
        Err(_) => false,
    })
}

const COLORS: [RGBColor; 6] = [
    RGBColor(31, 119, 180),
    RGBColor(255, 127, 14),
    RGBColor(44, 160, 44),
    RGBColor(214, 39, 40),
    RGBColor(148, 103, 189),
    RGBColor(140, 86, 75),
];

/// Writes every figure into `dir`; returns the file names.
pub fn write_all(dir: &Path, results: &[RowResult]) -> Result<Vec<String>> {
    let mut written = Vec::new();
    let per_epoch: [PerEpoch; 3] = [
        ("accuracy.png", "test accuracy", |p| p.test_accuracy),
        ("loss.png", "training loss", |p| f64::from(p.train_loss)),
        ("compression.png", "grouped layers' compression (x)", |p| {
            p.compression
        }),
    ];
    for (file, label, value) in per_epoch {
        let series: Vec<(&str, Vec<(f64, f64)>)> = results
            .iter()
            .map(|r| {
                let pts = r
                    .history
                    .iter()
                    .map(|p| (f64::from(p.epoch + 1), value(p)))
                    .collect();
                (r.row.name(), pts)
            })
            .collect();
        lines(&dir.join(file), label, "epoch", &series)?;
        written.push(file.to_string());
    }
    let layers: Vec<&str> = results
        .first()
        .map(|r| r.layers.iter().map(|l| l.name).collect())
        .unwrap_or_default();
    for (li, layer) in layers.iter().enumerate() {
        let norms: Vec<(&str, Vec<(f64, f64)>)> = results
            .iter()
            .map(|r| {
                let mut n = r.layers[li].norms.clone();
                n.sort_by(|a, b| b.total_cmp(a));
                let pts = n.iter().enumerate().map(|(i, &v)| (i as f64, v)).collect();
                (r.row.name(), pts)
            })
            .collect();
        let file = format!("norms_{layer}.png");
        lines(
            &dir.join(&file),
            &format!("{layer} group norms after phase 1, sorted"),
            "group rank",
            &norms,
        )?;
        written.push(file);
        for r in results {
            if let Some((n, s, bounds)) = &r.layers[li].similarity {
                if *n == 0 {
                    continue;
                }
                let file = format!("similarity_{}_{layer}.png", r.row.name());
                heatmap(&dir.join(&file), *n, s, bounds)?;
                written.push(file);
            }
        }
    }
    Ok(written)
}

fn lines(
    path: &Path,
    label: &str,
    x_label: &str,
    series: &[(&str, Vec<(f64, f64)>)],
) -> Result<()> {
    let root = BitMapBackend::new(path, (900, 560)).into_drawing_area();
    root.fill(&WHITE)?;
    let xs = series.iter().flat_map(|(_, p)| p.iter().map(|q| q.0));
    let ys = series.iter().flat_map(|(_, p)| p.iter().map(|q| q.1));
    let (x0, x1) = xs.fold((f64::MAX, f64::MIN), |(a, b), x| (a.min(x), b.max(x)));
    let (y0, y1) = ys.fold((f64::MAX, f64::MIN), |(a, b), y| (a.min(y), b.max(y)));
    if x0 > x1 {
        return Ok(());
    }
    let pad = ((y1 - y0) * 0.05).max(1e-6);
    let text = font_ready();
    let mut builder = ChartBuilder::on(&root);
    builder.margin(20);
    if text {
        builder
            .caption(label, ("sans-serif", 22))
            .x_label_area_size(40)
            .y_label_area_size(60);
    }
    let mut chart = builder.build_cartesian_2d(x0..x1.max(x0 + 1.0), (y0 - pad)..(y1 + pad))?;
    if text {
        chart.configure_mesh().x_desc(x_label).draw()?;
    }
    for (i, (name, pts)) in series.iter().enumerate() {
        let color = COLORS[i % COLORS.len()];
        let drawn =
            chart.draw_series(LineSeries::new(pts.iter().copied(), color.stroke_width(2)))?;
        if text {
            drawn
                .label(*name)
                .legend(move |(x, y)| PathElement::new([(x, y), (x + 20, y)], color));
        }
    }
    if text {
        chart
            .configure_series_labels()
            .background_style(WHITE.mix(0.8))
            .border_style(BLACK)
            .draw()?;
    }
    root.present()?;
    Ok(())
}

/// `s` (`n x n`, in [-1, 1]) as blue (-1) .. white (0) .. red (1), with the cluster
/// boundaries drawn.
fn heatmap(path: &Path, n: usize, s: &[f64], bounds: &[usize]) -> Result<()> {
    let cell = (800 / n).clamp(1, 8) as u32;
    let side = cell * n as u32;
    let root = BitMapBackend::new(path, (side + 20, side + 20)).into_drawing_area();
    root.fill(&WHITE)?;
    let area = root.margin(10, 10, 10, 10);
    for i in 0..n {
        for j in 0..n {
            let v = s[i * n + j].clamp(-1.0, 1.0);
            let c = if v >= 0.0 {
                RGBColor(255, (255.0 * (1.0 - v)) as u8, (255.0 * (1.0 - v)) as u8)
            } else {
                RGBColor((255.0 * (1.0 + v)) as u8, (255.0 * (1.0 + v)) as u8, 255)
            };
            let (x, y) = ((j as u32 * cell) as i32, (i as u32 * cell) as i32);
            area.draw(&Rectangle::new(
                [(x, y), (x + cell as i32, y + cell as i32)],
                c.filled(),
            ))?;
        }
    }
    for &b in bounds {
        let at = (b as u32 * cell) as i32;
        area.draw(&PathElement::new(
            [(at, 0), (at, side as i32)],
            BLACK.mix(0.3),
        ))?;
        area.draw(&PathElement::new(
            [(0, at), (side as i32, at)],
            BLACK.mix(0.3),
        ))?;
    }
    root.present()?;
    Ok(())
}
