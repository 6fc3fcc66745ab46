//! Choosing the conv GEMMs' kernels by measurement, per device and shape class.
//!
//! A plan's three GEMM ops (forward, input gradient, weight gradient) each run one tile kind
//! ([`Tile`]) with some count of K splits. [`Conv2d::plan`] chooses both with a fixed
//! heuristic (the tile that wastes the least padding, or on pointwise shapes the plain-GEMM
//! tile of least estimated cost, splits that fill the device: the documented default,
//! [`Tuning::Default`]). [`Conv2d::plan_tuned`] instead times the
//! candidates on this device the first time a shape *class* is planned and keeps the fastest,
//! per op, in the device's cache, which [`Conv2d::save_tuning`] and [`Conv2d::load_tuning`]
//! write and read as text. Tuning runs at plan time, never inside a `record_*` call.
//!
//! A choice fixes the order of every addition, so a plan gives the same bits run after run;
//! two choices may differ in the last bits (K splits and split tiles change the summation
//! tree), which is why a plan reports the choice it runs ([`Conv2dPlan::choice`]).
//!
//! Shape class ([`Conv2dShape`] to [`shape_class`]): kernel size, stride, dilation, whether
//! grouped or depthwise, whether the kernel covers the input (a dense layer), a bias, and the
//! powers of two at or above input channels per group, output channels per group and
//! batch x output positions. Shapes of one class have GEMMs within a factor of two in each
//! dimension, where the same tile and splits win.

use super::tiles::Tile;
use super::{Conv2d, Conv2dPlan, Conv2dShape};
use crate::error::{Error, Result};

/// The tile and K splits of one GEMM op.
#[derive(Clone, Copy, Debug, PartialEq, Eq, Hash)]
pub struct GemmChoice {
    /// The tile kind.
    pub tile: Tile,
    /// K splits; 0: what the default heuristic gives this tile. A count outside what the
    /// GEMM allows (at least `ceil(K / 16384)`, at most one split per 256 K steps, partials
    /// within one binding) is clamped to it when planning, so a stored choice applies to
    /// every shape of its class.
    pub splits: u32,
    /// Input gradient only: run it as the columns path, one GEMM into columns on `tile` and
    /// `splits` (a plain GEMM, where the pointwise tiles run) and a col2im gather, instead
    /// of the implicit GEMM per stride phase. Ungrouped shapes that are neither pointwise nor
    /// fully connected; a plan forced to run it elsewhere fails with
    /// [`Error::Shape`](crate::Error::Shape).
    pub col2im: bool,
}

impl GemmChoice {
    /// `tile` at `splits` K splits (0: the heuristic's), on the implicit or plain GEMM.
    pub fn new(tile: Tile, splits: u32) -> Self {
        GemmChoice {
            tile,
            splits,
            col2im: false,
        }
    }

    /// `tile` at `splits` on the input gradient's columns path (see [`GemmChoice::col2im`]).
    pub fn col2im(tile: Tile, splits: u32) -> Self {
        GemmChoice {
            col2im: true,
            ..GemmChoice::new(tile, splits)
        }
    }
}

/// The choice of each GEMM op of a plan; `None`: the default heuristic's.
#[derive(Clone, Copy, Debug, Default, PartialEq, Eq, Hash)]
pub struct Conv2dChoice {
    /// The forward GEMM.
    pub forward: Option<GemmChoice>,
    /// The input gradient (every stride phase runs this tile; the phases share one split
    /// count).
    pub input_gradient: Option<GemmChoice>,
    /// The weight gradient.
    pub weight_gradient: Option<GemmChoice>,
}

/// How [`Conv2d::plan_with`] chooses a plan's kernels.
#[derive(Clone, Copy, Debug, Default, PartialEq, Eq)]
pub enum Tuning {
    /// The fixed heuristic, what [`Conv2d::plan`] does: no measurement, the cache ignored.
    #[default]
    Default,
    /// The device cache's choice for the shape class when it has one (tuned earlier or
    /// loaded with [`Conv2d::load_tuning`]), else the default; never measures.
    Cached,
    /// The device cache's choice, or, the first time a class is planned, the fastest
    /// candidate measured now (stored in the cache). Native only: on the web this is
    /// [`Tuning::Cached`] (timing needs a blocking wait).
    Measure,
    /// Exactly this choice (to compare variants, or to test each).
    Fixed(Conv2dChoice),
}

/// First line of the cache's text.
const HEADER: &str = "tied-tuning 1";
/// The kernel family the cache's entries belong to.
const FAMILY: &str = "conv2d";

/// The smallest power of two at or above `v` (0 for 0).
fn bucket(v: u32) -> u64 {
    if v == 0 {
        0
    } else {
        u64::from(v).next_power_of_two()
    }
}

/// The class of `s` that tuning results are kept for (see the module docs), as text without
/// spaces, e.g. `k3x3-s1x1-d1x1-g1-ci64-co64-px4096-b`.
pub fn shape_class(s: &Conv2dShape) -> String {
    let [oh, ow] = s.out_size();
    let groups = if s.groups == 1 {
        "g1".to_string()
    } else if s.in_per_group() == 1 && s.out_per_group() == 1 {
        "dw".to_string()
    } else {
        format!("g{}", bucket(s.groups))
    };
    let fc = if s.kernel == s.in_size && s.padding == [0, 0] && s.dilation == [1, 1] {
        "-fc"
    } else {
        ""
    };
    format!(
        "k{}x{}-s{}x{}-d{}x{}-{groups}-ci{}-co{}-px{}{fc}{}",
        s.kernel[0],
        s.kernel[1],
        s.stride[0],
        s.stride[1],
        s.dilation[0],
        s.dilation[1],
        bucket(s.in_per_group()),
        bucket(s.out_per_group()),
        bucket(s.batch.saturating_mul(oh).saturating_mul(ow)),
        if s.bias { "-b" } else { "" },
    )
}

/// `tile/splits` (`auto` for 0), prefixed `col2im:` on the columns path, or `default`.
fn choice_text(c: Option<GemmChoice>) -> String {
    let Some(c) = c else {
        return "default".into();
    };
    let path = if c.col2im { "col2im:" } else { "" };
    match c.splits {
        0 => format!("{path}{}/auto", c.tile.name()),
        n => format!("{path}{}/{n}", c.tile.name()),
    }
}

fn parse_gemm(text: &str) -> Option<Option<GemmChoice>> {
    if text == "default" {
        return Some(None);
    }
    let (col2im, text) = match text.strip_prefix("col2im:") {
        Some(rest) => (true, rest),
        None => (false, text),
    };
    let (tile, splits) = text.split_once('/')?;
    let splits = if splits == "auto" {
        0
    } else {
        splits.parse().ok()?
    };
    Some(Some(GemmChoice {
        tile: Tile::from_name(tile)?,
        splits,
        col2im,
    }))
}

impl Conv2dChoice {
    /// `fwd=<c> ig=<c> wg=<c>` with each `<c>` `tile/splits`, `tile/auto` or `default`
    /// (`ig=col2im:tile/splits` on the columns path): the form the cache's text and the
    /// report use.
    pub fn describe(&self) -> String {
        format!(
            "fwd={} ig={} wg={}",
            choice_text(self.forward),
            choice_text(self.input_gradient),
            choice_text(self.weight_gradient)
        )
    }

    /// This choice with every pointwise tile replaced by the default when `shape` is not
    /// pointwise, and the columns path when `shape` cannot run it: a class (see
    /// [`shape_class`]) holds 1 x 1 kernels with and without padding, and a cached choice must
    /// plan every shape of its class.
    fn runnable_on(self, shape: &Conv2dShape) -> Self {
        let keep = |c: Option<GemmChoice>, columns_ok: bool| {
            c.filter(|c| match c.col2im {
                true => columns_ok && super::col2im::ineligible(shape).is_none(),
                false => !c.tile.is_pointwise() || super::pointwise::eligible(shape),
            })
        };
        Conv2dChoice {
            forward: keep(self.forward, false),
            input_gradient: keep(self.input_gradient, true),
            weight_gradient: keep(self.weight_gradient, false),
        }
    }

    /// Parses [`Conv2dChoice::describe`]'s form.
    fn parse(fields: &[&str]) -> Option<Self> {
        let [f, i, w] = fields else { return None };
        Some(Conv2dChoice {
            forward: parse_gemm(f.strip_prefix("fwd=")?)?,
            input_gradient: parse_gemm(i.strip_prefix("ig=")?)?,
            weight_gradient: parse_gemm(w.strip_prefix("wg=")?)?,
        })
    }
}

fn cache_error(reason: impl Into<String>) -> Error {
    Error::Data {
        file: "tuning cache".into(),
        reason: reason.into(),
    }
}

impl Conv2d {
    /// Plans `shape` choosing its kernels by measurement: [`Conv2d::plan_with`] with
    /// [`Tuning::Measure`]. The first plan of a shape class on a device times every
    /// candidate (on a software GPU, seconds per class); later plans of the class reuse the
    /// choice.
    ///
    /// # Errors
    /// As [`Conv2d::plan`], plus errors from running the candidates.
    pub fn plan_tuned(&self, shape: &Conv2dShape) -> Result<Conv2dPlan> {
        self.plan_with(shape, Tuning::Measure)
    }

    /// Plans `shape` with its kernels chosen as `tuning` says.
    ///
    /// # Errors
    /// As [`Conv2d::plan_tuned`].
    pub fn plan_with(&self, shape: &Conv2dShape, tuning: Tuning) -> Result<Conv2dPlan> {
        let choice = match tuning {
            Tuning::Default => Conv2dChoice::default(),
            Tuning::Fixed(c) => c,
            Tuning::Cached | Tuning::Measure => self.tuned_choice(shape, tuning)?,
        };
        self.plan_choice(shape, choice)
    }

    /// The choice of the cache for `shape`'s class; with [`Tuning::Measure`] (native), measured
    /// and cached when the class has none.
    fn tuned_choice(&self, shape: &Conv2dShape, tuning: Tuning) -> Result<Conv2dChoice> {
        // The class reads the output size: only of a valid shape.
        shape.validate()?;
        let class = shape_class(shape);
        if let Some(c) = self.cached(&class) {
            return Ok(c.runnable_on(shape));
        }
        #[cfg(not(target_arch = "wasm32"))]
        if tuning == Tuning::Measure {
            let c = self.measure(shape)?;
            self.gpu.set_tuned(FAMILY, &class, &c.describe());
            return Ok(c);
        }
        let _ = tuning;
        Ok(Conv2dChoice::default())
    }

    /// The cached choice for `class`.
    fn cached(&self, class: &str) -> Option<Conv2dChoice> {
        let text = self.gpu.tuned(FAMILY, class)?;
        Conv2dChoice::parse(&text.split(' ').collect::<Vec<_>>())
    }

    /// This device's tuning cache as text: a header line, the device line (adapter name,
    /// backend, driver), then one line per shape class, `conv2d <class> <choice>` (see
    /// [`shape_class`] and [`Conv2dChoice::describe`]).
    pub fn save_tuning(&self) -> String {
        let mut out = format!("{HEADER}\ndevice {}\n", self.device_identity());
        for (class, choice) in self.gpu.tuned_entries(FAMILY) {
            out.push_str(&format!("{FAMILY} {class} {choice}\n"));
        }
        out
    }

    /// Loads [`Conv2d::save_tuning`]'s text into this device's cache (entries replace those
    /// of the same class); returns how many entries it held.
    ///
    /// # Errors
    /// [`Error::Data`] when the text is not a tuning cache of this version, was saved on
    /// another device (adapter, backend or driver differ: tune again there), or has a
    /// malformed line (nothing is loaded then).
    pub fn load_tuning(&self, text: &str) -> Result<usize> {
        let mut lines = text.lines().filter(|l| !l.trim().is_empty());
        if lines.next().map(str::trim) != Some(HEADER) {
            return Err(cache_error(format!("the first line must be `{HEADER}`")));
        }
        let device = lines.next().and_then(|l| l.strip_prefix("device "));
        let ours = self.device_identity();
        if device != Some(ours.as_str()) {
            return Err(cache_error(format!(
                "saved on `{}`, not on this device (`{ours}`): tune on this device instead",
                device.unwrap_or("?")
            )));
        }
        let mut entries = Vec::new();
        for line in lines {
            let fields: Vec<&str> = line.split_whitespace().collect();
            let parsed = match fields.as_slice() {
                [family, class, rest @ ..] if *family == FAMILY => {
                    Conv2dChoice::parse(rest).map(|c| (class.to_string(), c))
                }
                _ => None,
            };
            entries.push(parsed.ok_or_else(|| cache_error(format!("bad line `{line}`")))?);
        }
        for (class, choice) in &entries {
            self.gpu.set_tuned(FAMILY, class, &choice.describe());
        }
        Ok(entries.len())
    }

    /// Adapter name, backend and driver: what a cache's device line must match.
    fn device_identity(&self) -> String {
        let info = self.gpu.adapter_info();
        let raw = format!(
            "{} | {:?} | {} | {}",
            info.name, info.backend, info.driver, info.driver_info
        );
        raw.replace(['\n', '\r'], " ")
    }
}
