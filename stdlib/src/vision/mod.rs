//! Images: decoding files under the sandbox, the built-in sample photos,
//! and preprocessing into model input tensors.

use std::sync::Arc;

use assay_interpreter::{Arg, Image, ToolError, Type, Value};
use ndarray::{Array4, ArrayD};

use crate::core::declare::{tool, ToolCtx, ToolResult};
use crate::core::kinds::Images;

pub mod bench_concepts;
pub mod bench_neurons;
pub mod bench_truth;
pub mod data;
pub mod describe;
pub mod edit;
pub mod exemplars;
pub mod font;
pub mod plot;
pub mod svg;
pub mod synthetic;
use crate::fetch::{self, Pinned};

const SKIMAGE: Pinned = Pinned {
    name: "scikit-image",
    version: "0.26.0",
    file: "scikit_image-0.26.0-cp311-cp311-manylinux_2_24_x86_64.manylinux_2_28_x86_64.whl",
    sha256: "74aa5518ccea28121f57a95374581d3b979839adc25bb03f289b1bc9b99c58af",
};
const SKLEARN: Pinned = Pinned {
    name: "scikit-learn",
    version: "1.9.1",
    file: "scikit_learn-1.9.1-cp311-cp311-manylinux_2_27_x86_64.manylinux_2_28_x86_64.whl",
    sha256: "52a0703bbc07ad27f560fa63fa68e4c54dd735bfbbf65b4dd3c225dc7547b6df",
};
const MATPLOTLIB: Pinned = Pinned {
    name: "matplotlib",
    version: "3.11.2",
    file: "matplotlib-3.11.2-cp311-cp311-manylinux2014_x86_64.manylinux_2_17_x86_64.whl",
    sha256: "07d9b9fa60cd4c393692f50d0bb03123242ddf61c99bb0e95e75feb354e7c1a8",
};

/// A wheel that ships sample photos: the package, the platform tag pip needs
/// to pick its binary wheel, the folder inside it, and the files.
struct PhotoSource {
    wheel: &'static Pinned,
    platform: &'static str,
    folder: &'static str,
    files: &'static [&'static str],
}

/// Real photographs, in the order `sample_photos()` returns them:
/// scikit-image's (public domain / CC0), scikit-learn's china and flower
/// (CC BY 2.0, see the wheel's `sklearn/datasets/images/README.txt`) and
/// matplotlib's portrait of Grace Hopper (public domain).
const PHOTO_SOURCES: &[PhotoSource] = &[
    PhotoSource {
        wheel: &SKIMAGE,
        platform: "manylinux_2_28_x86_64",
        folder: "skimage/data",
        files: &[
            "astronaut.png",
            "chelsea.png",
            "coffee.png",
            "rocket.jpg",
            "motorcycle_left.png",
            "motorcycle_right.png",
            "hubble_deep_field.jpg",
            "brick.png",
            "grass.png",
            "gravel.png",
        ],
    },
    PhotoSource {
        wheel: &SKLEARN,
        platform: "manylinux_2_28_x86_64",
        folder: "sklearn/datasets/images",
        files: &["china.jpg", "flower.jpg"],
    },
    PhotoSource {
        wheel: &MATPLOTLIB,
        platform: "manylinux2014_x86_64",
        folder: "matplotlib/mpl-data/sample_data",
        files: &["grace_hopper.jpg"],
    },
];

/// Decodes PNG, JPEG or WebP bytes into an RGBA image.
pub fn decode(bytes: &[u8], what: &str) -> Result<Image, String> {
    let img = image::load_from_memory(bytes).map_err(|e| format!("{what} is not a PNG, JPEG or WebP image: {e}"))?;
    let rgba = img.to_rgba8();
    Ok(Image::new(rgba.width(), rgba.height(), rgba.into_raw()))
}

/// One sample photo in the cache.
pub struct PhotoFile {
    /// The file name without its extension, e.g. "coffee".
    pub name: String,
    /// The package it comes from, e.g. "scikit-image".
    pub source: &'static str,
    pub path: std::path::PathBuf,
}

/// The sample photos, each extracted once from its pinned wheel into the cache.
pub fn photo_files() -> Result<Vec<PhotoFile>, String> {
    let dir = crate::fetch::cache_dir().join("data").join("photos");
    let mut out = Vec::new();
    for src in PHOTO_SOURCES {
        let mut wheel = None;
        for name in src.files {
            let path = dir.join(name);
            if !path.is_file() {
                let w = match &wheel {
                    Some(w) => w,
                    None => wheel.insert(fetch::pypi(src.wheel, Some(src.platform))?),
                };
                let bytes = fetch::zip_member(w, &format!("{}/{name}", src.folder))?;
                fetch::write_atomic(&path, &bytes)?;
            }
            let stem = name.rsplit_once('.').map(|(s, _)| s).unwrap_or(name);
            out.push(PhotoFile { name: stem.to_string(), source: src.wheel.name, path });
        }
    }
    Ok(out)
}

tool! {
    /// Loads a PNG or JPEG file (under the script's allowed roots) as an RGBA image.
    ///
    /// ```assay
    /// let img = image("fixtures/red.png")
    /// assert img.width == 4 and img.height == 2
    /// ```
    image as image_ in Images -> Type::Image;
    {
        /// path relative to the script's folder
        path: String,
    }
    image_
}

fn image_(p: image_::Params, ctx: &mut dyn ToolCtx) -> ToolResult {
    let path = p.path.clone();
    let bytes = ctx.read_file(&path).map_err(|e| e.at(p.path.name()))?;
    decode(&bytes, &format!("`{path}`")).map(|i| Value::Image(Arc::new(i))).map_err(|e| p.path.error(e))
}

tool! {
    /// Real photographs for trying models, in a fixed order: astronaut, chelsea (a cat), coffee,
    /// rocket, two motorcycles, the Hubble deep field, and brick, grass and gravel textures (0-9,
    /// scikit-image, public domain); china (a temple) and flower (10-11, scikit-learn, CC BY 2.0);
    /// grace_hopper (12, matplotlib, public domain). Each is a record {name, source, image}; the files
    /// are fetched from the pinned wheels once and digested into the run manifest.
    ///
    /// ```assay
    /// let photos = sample_photos()
    /// assert len(photos) == 13
    /// assert photos[2].name == "coffee" and photos[2].image.width == 600
    /// assert map(filter(photos, p => p.source != "scikit-image"), p => p.name) == ["china", "flower", "grace_hopper"]
    /// assert photos[12].image.width == 512 and photos[10].image.height == 427
    /// ```
    sample_photos in Images -> Type::list(Type::record_of(&[("name", Type::Str), ("source", Type::Str), ("image", Type::Image)]));
    {
    }
    sample_photos
}

fn sample_photos(_p: sample_photos::Params, ctx: &mut dyn ToolCtx) -> ToolResult {
    let files = photo_files().map_err(ToolError::new)?;
    let mut out = Vec::new();
    for f in files {
        let bytes = fetch::read_cached(&f.path).map_err(ToolError::new)?;
        let digest = fetch::sha256_file(&f.path).map_err(ToolError::new)?;
        ctx.note_input(&f.path, &digest);
        let img = decode(&bytes, &f.name).map_err(ToolError::new)?;
        out.push(Value::record([
            ("name", Value::str(&f.name)),
            ("source", Value::str(f.source)),
            ("image", Value::Image(Arc::new(img))),
        ]));
    }
    Ok(Value::list(out))
}

fn per_channel(x: &Arg) -> Result<[f32; 3], ToolError> {
    match x.get() {
        Value::Num(n) => Ok([*n as f32; 3]),
        _ => {
            let v = x.numbers()?;
            if v.len() != 3 {
                return Err(x.error(format!("give one number or three (R, G, B), found {}", v.len())));
            }
            Ok([v[0] as f32, v[1] as f32, v[2] as f32])
        }
    }
}

tool! {
    /// Turns images into a model input tensor [N, 3, size, size] (or NHWC): resize the short side to
    /// `resize`, centre-crop `size`, then (x - mean) / std per channel on 0..255 values. The defaults
    /// are EfficientNet-Lite's preprocessing.
    ///
    /// ```assay
    /// let x = pixels(image("fixtures/red.png"), size: 2, resize: 2)
    /// assert x.shape == [1, 3, 2, 2]
    /// assert x[0][0][0][0] == (255 - 127) / 128
    /// ```
    pixels in Images -> Type::Tensor;
    {
        /// an image or a list of images
        images: Images,
        /// output height and width
        size: usize = 224,
        /// short side before cropping
        resize: usize = 256,
        /// one number or [R, G, B]
        mean: Arg [Type::Any] = 127.0,
        /// one number or [R, G, B]
        std: Arg [Type::Any] = 128.0,
        /// "nchw" or "nhwc"
        layout: String = "nchw",
    }
    pixels
}

fn pixels(p: pixels::Params, _: &mut dyn ToolCtx) -> ToolResult {
    let images = &p.images.images;
    let size = *p.size;
    let resize = *p.resize;
    if size == 0 || size > 4096 || resize < size || resize > 8192 {
        return Err(p.size.error(format!("need 0 < size <= resize <= 8192, found size {size}, resize {resize}")));
    }
    let (mean, std) = (per_channel(&p.mean)?, per_channel(&p.std)?);
    if std.contains(&0.0) {
        return Err(p.std.error("`std` must not be zero"));
    }
    let layout = p.layout.as_str();
    let (s, n) = (size, images.len());
    let mut data = Vec::with_capacity(n * 3 * s * s);
    for img in images {
        data.extend(
            crate::pixels::preprocess(img, resize as u32, size as u32, mean, std).map_err(|e| p.images.error(e))?,
        );
    }
    let nchw = Array4::from_shape_vec((n, 3, s, s), data).map_err(|e| ToolError::new(e.to_string()))?;
    let arr: ArrayD<f32> = match layout {
        "nchw" => nchw.into_dyn(),
        "nhwc" => nchw.permuted_axes([0, 2, 3, 1]).as_standard_layout().to_owned().into_dyn(),
        other => return Err(p.layout.error(format!("layout must be \"nchw\" or \"nhwc\", found \"{other}\""))),
    };
    Ok(Value::tensor(arr))
}

#[cfg(test)]
mod tests {
    #[test]
    fn decodes_webp() {
        let src = image::RgbaImage::from_fn(3, 2, |x, y| image::Rgba([x as u8 * 80, y as u8 * 100, 7, 255]));
        let mut bytes = Vec::new();
        image::codecs::webp::WebPEncoder::new_lossless(&mut bytes)
            .encode(src.as_raw(), 3, 2, image::ExtendedColorType::Rgba8)
            .expect("encode");
        let img = super::decode(&bytes, "test.webp").expect("decode");
        assert_eq!((img.width, img.height), (3, 2));
        assert_eq!(img.pixels, src.into_raw());
        assert!(super::decode(b"RIFF....WEBPjunk", "bad.webp").unwrap_err().contains("bad.webp"));
    }
}
