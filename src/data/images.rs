//! Decoded patches held in memory.
//!
//! Patches are small (the public set is about 2,500 images) and every epoch
//! reads each of them, so they are decoded once, in parallel, resized to the
//! model's input size and kept as RGB bytes: 224 x 224 x 3 bytes is 147 KiB a
//! patch, about 370 MB for the public set. Resizing uses the bilinear
//! (triangle) filter, as the reference resizes with bilinear interpolation.
//!
//! Decoding does not stop at the first bad file: the error lists every file
//! that failed, with the decoder's message, so one run shows all of them.

use super::Patch;
use image::imageops::FilterType;
use image::{ImageReader, RgbImage};
use rayon::prelude::*;
use std::fmt::Write as _;
use std::path::{Path, PathBuf};

/// Why patches could not be loaded into an [`ImageStore`].
#[derive(Debug, thiserror::Error)]
pub enum ImageError {
    /// The requested size is zero.
    #[error("image size must be at least 1 pixel, got {size}")]
    ZeroSize {
        /// The requested size.
        size: u32,
    },
    /// One or more files could not be read or decoded (all of them are listed).
    #[error("{}", failures_message(.failures))]
    Decode {
        /// Every failing file.
        failures: Vec<DecodeFailure>,
    },
    /// Images given to [`ImageStore::from_images`] are not all `size x size`.
    #[error(
        "image {index} is {width}x{height}, but every image of the store must be {size}x{size}"
    )]
    WrongSize {
        /// Position of the first offending image.
        index: usize,
        /// Its width.
        width: u32,
        /// Its height.
        height: u32,
        /// The store's size.
        size: u32,
    },
}

/// One file that could not be decoded.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct DecodeFailure {
    /// The full path that was read.
    pub path: PathBuf,
    /// The reader's or decoder's message.
    pub message: String,
}

/// Decoded RGB patches, all `size x size`, indexed like the patch list they came from.
#[derive(Debug, Clone)]
pub struct ImageStore {
    images: Vec<RgbImage>,
    size: u32,
}

impl ImageStore {
    /// Decodes `root.join(&patch.path)` for every patch (in parallel) and
    /// resizes each to `size x size`. Index `i` of the store is `patches[i]`.
    pub fn load(root: &Path, patches: &[Patch], size: u32) -> Result<ImageStore, ImageError> {
        if size == 0 {
            return Err(ImageError::ZeroSize { size });
        }
        let results: Vec<Result<RgbImage, DecodeFailure>> = patches
            .par_iter()
            .map(|patch| decode_resized(&root.join(&patch.path), size))
            .collect();
        let mut images = Vec::with_capacity(results.len());
        let mut failures = Vec::new();
        for result in results {
            match result {
                Ok(image) => images.push(image),
                Err(failure) => failures.push(failure),
            }
        }
        if failures.is_empty() {
            Ok(ImageStore { images, size })
        } else {
            Err(ImageError::Decode { failures })
        }
    }

    /// Wraps already decoded images (e.g. generated ones); all must be `size x size`.
    pub fn from_images(images: Vec<RgbImage>, size: u32) -> Result<ImageStore, ImageError> {
        if size == 0 {
            return Err(ImageError::ZeroSize { size });
        }
        if let Some((index, image)) = images
            .iter()
            .enumerate()
            .find(|(_, im)| im.dimensions() != (size, size))
        {
            let (width, height) = image.dimensions();
            return Err(ImageError::WrongSize {
                index,
                width,
                height,
                size,
            });
        }
        Ok(ImageStore { images, size })
    }

    /// The image at `index`. Panics if `index >= len()`, like slice indexing.
    pub fn get(&self, index: usize) -> &RgbImage {
        &self.images[index]
    }

    /// Number of images.
    pub fn len(&self) -> usize {
        self.images.len()
    }

    /// Whether the store holds no images.
    pub fn is_empty(&self) -> bool {
        self.images.is_empty()
    }

    /// Side length of every image, in pixels.
    pub fn size(&self) -> u32 {
        self.size
    }
}

/// Reads one file, decodes it (format guessed from the content, not the
/// extension) and resizes it to `size x size` unless it already is.
fn decode_resized(path: &Path, size: u32) -> Result<RgbImage, DecodeFailure> {
    let failure = |message: String| DecodeFailure {
        path: path.to_path_buf(),
        message,
    };
    let image = ImageReader::open(path)
        .and_then(|reader| reader.with_guessed_format())
        .map_err(|e| failure(e.to_string()))?
        .decode()
        .map_err(|e| failure(e.to_string()))?
        .into_rgb8();
    if image.dimensions() == (size, size) {
        Ok(image)
    } else {
        Ok(image::imageops::resize(
            &image,
            size,
            size,
            FilterType::Triangle,
        ))
    }
}

fn failures_message(failures: &[DecodeFailure]) -> String {
    let mut text = format!(
        "{} image file(s) could not be decoded (replace or remove them):",
        failures.len()
    );
    for failure in failures {
        let _ = write!(text, "\n  {}: {}", failure.path.display(), failure.message);
    }
    text
}

#[cfg(test)]
mod tests {
    use super::*;
    use crate::data::Label;
    use image::Rgb;
    use std::fs;

    fn patch(path: &str) -> Patch {
        Patch {
            path: path.into(),
            label: Label::Negative,
            slide: "S".into(),
            kind: None,
        }
    }

    /// Writes a `width x height` PNG whose pixels encode their position.
    fn write_png(path: &Path, width: u32, height: u32) -> RgbImage {
        let image = RgbImage::from_fn(width, height, |x, y| {
            Rgb([(x * 10 % 256) as u8, (y * 10 % 256) as u8, 7])
        });
        image.save(path).unwrap();
        image
    }

    #[test]
    fn loads_in_patch_order_and_resizes() {
        let dir = tempfile::tempdir().unwrap();
        let small = write_png(&dir.path().join("a.png"), 4, 4);
        write_png(&dir.path().join("b.png"), 8, 6);
        // A uniform image stays uniform under any resize filter.
        RgbImage::from_pixel(3, 5, Rgb([1, 2, 3]))
            .save(dir.path().join("c.png"))
            .unwrap();
        let patches = [patch("a.png"), patch("c.png"), patch("b.png")];
        let store = ImageStore::load(dir.path(), &patches, 4).unwrap();
        assert_eq!((store.len(), store.size(), store.is_empty()), (3, 4, false));
        assert_eq!(store.get(0), &small); // already 4x4: untouched
        assert!(store.get(1).pixels().all(|p| *p == Rgb([1, 2, 3])));
        assert_eq!(store.get(2).dimensions(), (4, 4));
        // Downscaling 8 -> 4 wide with a triangle filter averages neighbours:
        // the red ramp 0,10,..,70 becomes increasing values strictly inside it.
        let reds: Vec<u8> = (0..4).map(|x| store.get(2).get_pixel(x, 0)[0]).collect();
        assert!(
            reds.windows(2).all(|w| w[0] < w[1]) && reds[0] > 0 && reds[3] < 70,
            "{reds:?}"
        );
    }

    #[test]
    fn guesses_format_from_content() {
        let dir = tempfile::tempdir().unwrap();
        let image = write_png(&dir.path().join("a.png"), 2, 2);
        fs::rename(dir.path().join("a.png"), dir.path().join("a.jpg")).unwrap();
        let store = ImageStore::load(dir.path(), &[patch("a.jpg")], 2).unwrap();
        assert_eq!(store.get(0), &image);
    }

    #[test]
    fn every_failing_file_is_listed() {
        let dir = tempfile::tempdir().unwrap();
        write_png(&dir.path().join("good.png"), 4, 4);
        fs::write(
            dir.path().join("corrupt.png"),
            b"this is not an image at all",
        )
        .unwrap();
        write_png(&dir.path().join("full.png"), 32, 32);
        let bytes = fs::read(dir.path().join("full.png")).unwrap();
        fs::write(dir.path().join("truncated.png"), &bytes[..bytes.len() / 2]).unwrap();
        let patches = [
            patch("good.png"),
            patch("corrupt.png"),
            patch("missing.png"),
            patch("truncated.png"),
        ];
        let err = ImageStore::load(dir.path(), &patches, 4).unwrap_err();
        let ImageError::Decode { failures } = &err else {
            panic!("{err}")
        };
        let names: Vec<_> = failures
            .iter()
            .map(|f| f.path.file_name().unwrap().to_owned())
            .collect();
        assert_eq!(names, ["corrupt.png", "missing.png", "truncated.png"]);
        assert!(failures.iter().all(|f| !f.message.is_empty()));
        let text = err.to_string();
        assert!(
            text.starts_with("3 image file(s) could not be decoded"),
            "{text}"
        );
        for failure in failures {
            assert!(text.contains(&failure.path.display().to_string()), "{text}");
            assert!(text.contains(&failure.message), "{text}");
        }
    }

    #[test]
    fn rejects_zero_size_and_wrong_sizes() {
        let dir = tempfile::tempdir().unwrap();
        assert!(matches!(
            ImageStore::load(dir.path(), &[], 0),
            Err(ImageError::ZeroSize { .. })
        ));
        let images = vec![RgbImage::new(2, 2), RgbImage::new(2, 3)];
        let err = ImageStore::from_images(images, 2).unwrap_err();
        assert!(matches!(
            err,
            ImageError::WrongSize {
                index: 1,
                width: 2,
                height: 3,
                size: 2
            }
        ));
        let store = ImageStore::from_images(vec![RgbImage::new(2, 2)], 2).unwrap();
        assert_eq!(store.len(), 1);
    }
}
