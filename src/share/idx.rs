//! MNIST-format IDX files: images and labels as u8, plain or gzipped.
//!
//! Format (big-endian): a magic word `0x0000_08DD` (`08` = unsigned bytes, `DD` = number of
//! dimensions), then one u32 per dimension, then the data, row-major. Images are
//! `0x0000_0803` with dimensions `[count, rows, cols]`, labels `0x0000_0801` with `[count]`.
//! Anything after the data is an error (a file is one array).
//!
//! Gzip (files starting `1f 8b`) is decoded when the crate is built with the `gzip` feature
//! (pure-Rust `flate2`); without it such a file is an error that says so, and a caller can
//! decode it and hand the bytes to [`parse_images`] / [`parse_labels`]. Files are found by
//! name, with or without `.gz`: [`load_dir`] reads the standard four
//! ([`TRAIN_IMAGES`], [`TRAIN_LABELS`], [`TEST_IMAGES`], [`TEST_LABELS`]), as MNIST and
//! Fashion-MNIST ship them (Debian's `dataset-fashion-mnist` installs them, gzipped, in
//! `/usr/share/datasets/fashion-mnist`).
//!
//! Every error is [`Error::Data`] naming the file: missing, unreadable, not decodable,
//! truncated, trailing bytes, wrong magic, zero image dimensions, train and test images of
//! different sizes, or image and label counts that differ.

use std::path::{Path, PathBuf};

use crate::error::{Error, Result};

/// Magic word of an IDX file of u8 images `[count, rows, cols]`.
pub const IMAGES_MAGIC: u32 = 0x0000_0803;
/// Magic word of an IDX file of u8 labels `[count]`.
pub const LABELS_MAGIC: u32 = 0x0000_0801;
/// The training images' file name (without `.gz`).
pub const TRAIN_IMAGES: &str = "train-images-idx3-ubyte";
/// The training labels' file name (without `.gz`).
pub const TRAIN_LABELS: &str = "train-labels-idx1-ubyte";
/// The test images' file name (without `.gz`).
pub const TEST_IMAGES: &str = "t10k-images-idx3-ubyte";
/// The test labels' file name (without `.gz`).
pub const TEST_LABELS: &str = "t10k-labels-idx1-ubyte";

/// Images, `pixels` row-major `[count][rows][cols]`, one u8 each (0 = background in MNIST).
#[derive(Clone, Debug, PartialEq, Eq)]
pub struct Images {
    /// Number of images.
    pub count: usize,
    /// Rows of an image.
    pub rows: usize,
    /// Columns of an image.
    pub cols: usize,
    /// `count * rows * cols` pixels.
    pub pixels: Vec<u8>,
}

impl Images {
    /// Pixels of one image (`rows * cols`).
    pub fn image_len(&self) -> usize {
        self.rows * self.cols
    }

    /// Image `i`, row-major (panics when `i >= count`).
    pub fn image(&self, i: usize) -> &[u8] {
        let n = self.image_len();
        &self.pixels[i * n..(i + 1) * n]
    }
}

/// Images and their labels (the same count).
#[derive(Clone, Debug, PartialEq, Eq)]
pub struct Split {
    /// The images.
    pub images: Images,
    /// One label per image.
    pub labels: Vec<u8>,
}

/// A data set in the MNIST layout: training and test splits, images of one size.
#[derive(Clone, Debug, PartialEq, Eq)]
pub struct Dataset {
    /// `train-*` (60,000 images for MNIST and Fashion-MNIST).
    pub train: Split,
    /// `t10k-*` (10,000 images).
    pub test: Split,
}

fn data_err(file: &str, reason: impl Into<String>) -> Error {
    Error::Data {
        file: file.to_string(),
        reason: reason.into(),
    }
}

/// Whether `bytes` start with the gzip magic `1f 8b`.
pub fn is_gzip(bytes: &[u8]) -> bool {
    bytes.starts_with(&[0x1f, 0x8b])
}

/// Decodes gzip (all members); bytes that are not gzip are returned as they are. `file`
/// names the source in errors.
///
/// # Errors
/// [`Error::Data`] when the stream is corrupt, or, without the `gzip` feature, for any gzip
/// input.
pub fn decode(file: &str, bytes: Vec<u8>) -> Result<Vec<u8>> {
    if !is_gzip(&bytes) {
        return Ok(bytes);
    }
    gunzip(file, &bytes)
}

#[cfg(feature = "gzip")]
fn gunzip(file: &str, bytes: &[u8]) -> Result<Vec<u8>> {
    use std::io::Read;
    let mut out = Vec::new();
    flate2::read::MultiGzDecoder::new(bytes)
        .read_to_end(&mut out)
        .map_err(|e| data_err(file, format!("gzip stream cannot be decoded: {e}")))?;
    Ok(out)
}

#[cfg(not(feature = "gzip"))]
fn gunzip(file: &str, _bytes: &[u8]) -> Result<Vec<u8>> {
    Err(data_err(
        file,
        "the file is gzip-compressed: build tied with the `gzip` feature, or decompress it \
         (gunzip) or decode it yourself and call parse_images / parse_labels",
    ))
}

/// The dimensions after checking the magic word and the length.
fn parse(file: &str, bytes: &[u8], magic: u32, what: &str) -> Result<Vec<usize>> {
    if is_gzip(bytes) {
        return Err(data_err(
            file,
            "the bytes are gzip-compressed: decode them first (idx::decode)",
        ));
    }
    let word = |i: usize| -> Option<u32> {
        bytes
            .get(i * 4..i * 4 + 4)
            .map(|b| u32::from_be_bytes([b[0], b[1], b[2], b[3]]))
    };
    let found = word(0).ok_or_else(|| {
        data_err(
            file,
            format!("truncated: {} bytes, no IDX header", bytes.len()),
        )
    })?;
    if found != magic {
        return Err(data_err(
            file,
            format!(
                "wrong magic 0x{found:08x}: IDX {what} start with 0x{magic:08x} (u8, {} \
                 dimensions)",
                magic & 0xff
            ),
        ));
    }
    let ndims = (magic & 0xff) as usize;
    let mut dims = Vec::with_capacity(ndims);
    for d in 0..ndims {
        let v = word(1 + d).ok_or_else(|| {
            data_err(
                file,
                format!("truncated: {} bytes end inside the header", bytes.len()),
            )
        })?;
        dims.push(v as usize);
    }
    let header = 4 * (1 + ndims);
    let len = dims
        .iter()
        .try_fold(1usize, |a, &d| a.checked_mul(d))
        .ok_or_else(|| data_err(file, format!("dimensions {dims:?} overflow")))?;
    let have = bytes.len() - header;
    if have < len {
        return Err(data_err(
            file,
            format!("truncated: dimensions {dims:?} need {len} data bytes, the file has {have}"),
        ));
    }
    if have > len {
        return Err(data_err(
            file,
            format!(
                "{} bytes after the data of dimensions {dims:?} (not one IDX array)",
                have - len
            ),
        ));
    }
    Ok(dims)
}

/// Parses an IDX image file (uncompressed bytes; see [`decode`]). `file` names it in errors.
///
/// # Errors
/// [`Error::Data`]: gzip bytes, truncated, trailing bytes, wrong magic, or a zero row or
/// column count.
pub fn parse_images(file: &str, bytes: &[u8]) -> Result<Images> {
    let dims = parse(file, bytes, IMAGES_MAGIC, "images")?;
    let (count, rows, cols) = (dims[0], dims[1], dims[2]);
    if rows == 0 || cols == 0 {
        return Err(data_err(
            file,
            format!("images of {rows} x {cols} pixels: both must be at least 1"),
        ));
    }
    Ok(Images {
        count,
        rows,
        cols,
        pixels: bytes[16..].to_vec(),
    })
}

/// Parses an IDX label file (uncompressed bytes; see [`decode`]). `file` names it in errors.
///
/// # Errors
/// [`Error::Data`]: gzip bytes, truncated, trailing bytes, or wrong magic.
pub fn parse_labels(file: &str, bytes: &[u8]) -> Result<Vec<u8>> {
    parse(file, bytes, LABELS_MAGIC, "labels")?;
    Ok(bytes[8..].to_vec())
}

/// `dir/name`, else `dir/name.gz`.
fn find(dir: &Path, name: &str) -> Result<PathBuf> {
    let plain = dir.join(name);
    if plain.is_file() {
        return Ok(plain);
    }
    let gz = dir.join(format!("{name}.gz"));
    if gz.is_file() {
        return Ok(gz);
    }
    Err(data_err(
        &plain.display().to_string(),
        format!(
            "missing: neither {name} nor {name}.gz is in {}",
            dir.display()
        ),
    ))
}

fn read(path: &Path) -> Result<(String, Vec<u8>)> {
    let file = path.display().to_string();
    let bytes = std::fs::read(path).map_err(|e| data_err(&file, format!("cannot be read: {e}")))?;
    let bytes = decode(&file, bytes)?;
    Ok((file, bytes))
}

/// Reads an image file and its label file (each plain or gzipped) into a split.
///
/// # Errors
/// [`Error::Data`] naming the file: unreadable, undecodable, malformed (see
/// [`parse_images`], [`parse_labels`]), or a label count that differs from the image count
/// (naming the label file).
pub fn load_split(images: &Path, labels: &Path) -> Result<Split> {
    let (ifile, ibytes) = read(images)?;
    let images = parse_images(&ifile, &ibytes)?;
    let (lfile, lbytes) = read(labels)?;
    let labels = parse_labels(&lfile, &lbytes)?;
    if labels.len() != images.count {
        return Err(data_err(
            &lfile,
            format!(
                "{} labels, but {ifile} has {} images",
                labels.len(),
                images.count
            ),
        ));
    }
    Ok(Split { images, labels })
}

/// Loads the four files of an MNIST-format data set from `dir` (each as `NAME` or
/// `NAME.gz`).
///
/// # Errors
/// [`Error::Data`] naming the file: missing, unreadable, undecodable, malformed, image and
/// label counts that differ, or test images whose size differs from the training images'
/// (naming the test image file).
pub fn load_dir(dir: impl AsRef<Path>) -> Result<Dataset> {
    let dir = dir.as_ref();
    let paths = [TRAIN_IMAGES, TRAIN_LABELS, TEST_IMAGES, TEST_LABELS]
        .map(|name| find(dir, name))
        .into_iter()
        .collect::<Result<Vec<_>>>()?;
    let train = load_split(&paths[0], &paths[1])?;
    let test = load_split(&paths[2], &paths[3])?;
    if (test.images.rows, test.images.cols) != (train.images.rows, train.images.cols) {
        return Err(data_err(
            &paths[2].display().to_string(),
            format!(
                "images of {} x {}, but the training images are {} x {}",
                test.images.rows, test.images.cols, train.images.rows, train.images.cols
            ),
        ));
    }
    Ok(Dataset { train, test })
}
