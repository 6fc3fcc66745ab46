//! Learning to share (Zhang et al., ICLR 2018): the pieces of the two-phase training around
//! the kernels: CPU, except the similarity, which also runs on the GPU ([`Similarity`]).
//!
//! - [`affinity`]: affinity propagation as scikit-learn computes it (the paper's clustering).
//! - [`discover`]: group norms, the zero-group mask, the paper's similarity
//!   `S_ij = <w_i, w_j> / max(|w_i|^2, |w_j|^2)` over the nonzero groups, and the tie map that
//!   clustering them gives ([`discover::DiscoverTies`]).
//! - [`metrics`]: sparsity, clusters, unique values, sharing and compression, from a tie map
//!   and mask or counted on a tensor.
//! - [`similarity`]: the same similarity on the GPU, a GEMM plus a scaling kernel; used by
//!   [`discover::DiscoverTies::discover_on`].
//! - [`idx`]: MNIST-format IDX files (images, labels), plain or gzipped (feature `gzip`).
//!
//! The paper's GrOWL weights are [`crate::growl::Weights::Pld`]; enforcing the ties in phase 2
//! is [`crate::tying`] (its projection is the paper's group averaging).
//!
//! ```
//! # fn main() -> tied::Result<()> {
//! use tied::growl::GroupLayout;
//! use tied::share::discover::DiscoverTies;
//! use tied::share::metrics::ShareMetrics;
//! // Four rows of a 4 x 3 matrix: rows 0 and 2 nearly equal, row 1 zero, row 3 apart.
//! let layout = GroupLayout::Rows { rows: 4, cols: 3 };
//! let w = [1.0, 2.0, 3.0, 0.0, 0.0, 0.0, 1.0, 2.0, 3.1, -3.0, 0.5, 1.0];
//! let found = DiscoverTies::default().discover(layout, &w)?; // preference 0.6, f32 eps
//! assert_eq!(found.zero, [false, true, false, false]);
//! let ids = found.map.ids();
//! assert_eq!(ids[0], ids[2]);
//! assert_ne!(ids[0], ids[3]);
//! assert_eq!(ids[1], tied::tying::UNTIED);
//! let m = ShareMetrics::from_map(&found.map, &found.zero)?;
//! assert_eq!((m.zero_groups, m.clusters, m.unique_nonzero), (1, 2, 6));
//! # Ok(()) }
//! ```

pub mod affinity;
pub mod discover;
pub mod idx;
pub mod metrics;
pub mod similarity;

pub use similarity::Similarity;
