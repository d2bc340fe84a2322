//! Images as a model sees them: the resize, centre crop and normalisation
//! of a model's preprocessing, and MAIA's masked images. A leaf: it knows
//! images and arrays, nothing of models or tools, so the model layer
//! (`methods/units.rs`) and the image tools (`vision/`) both build on it.

use assay_interpreter::Image;
use image::imageops::FilterType;

/// Resize the short side to `resize`, centre-crop `size`, normalise.
pub fn preprocess(img: &Image, resize: u32, size: u32, mean: [f32; 3], std: [f32; 3]) -> Result<Vec<f32>, String> {
    let crop = crop_view(img, resize, size)?;
    let plane = (size * size) as usize;
    let mut out = vec![0f32; 3 * plane];
    for (idx, p) in crop.pixels.chunks_exact(4).enumerate() {
        for c in 0..3 {
            out[c * plane + idx] = (p[c] as f32 - mean[c]) / std[c];
        }
    }
    Ok(out)
}

/// The centre crop the model sees, as an RGBA image (resize the short side,
/// crop `size`), without normalisation.
pub fn crop_view(img: &Image, resize: u32, size: u32) -> Result<Image, String> {
    let rgba = image::RgbaImage::from_raw(img.width, img.height, img.pixels.clone()).ok_or("corrupt image buffer")?;
    let (w, h) = (img.width.max(1), img.height.max(1));
    let (nw, nh) = if w <= h {
        (resize, (h as u64 * resize as u64 / w as u64) as u32)
    } else {
        ((w as u64 * resize as u64 / h as u64) as u32, resize)
    };
    let resized = image::imageops::resize(&rgba, nw.max(size), nh.max(size), FilterType::Triangle);
    let x0 = (resized.width() - size) / 2;
    let y0 = (resized.height() - size) / 2;
    let crop = image::imageops::crop_imm(&resized, x0, y0, size, size).to_image();
    Ok(Image::new(size, size, crop.into_raw()))
}

/// MAIA's masked image: the activation map upsampled to the image, and the
/// regions below `threshold` times the map's maximum darkened to a quarter.
pub fn mask_image(img: &Image, map: &ndarray::ArrayView2<f32>, threshold: f32) -> Image {
    let (mh, mw) = (map.shape()[0], map.shape()[1]);
    let max = map.iter().fold(f32::NEG_INFINITY, |a, b| a.max(*b));
    let cut = if max > 0.0 { threshold * max } else { f32::INFINITY };
    let mut out = img.clone();
    for y in 0..img.height as usize {
        for x in 0..img.width as usize {
            // Bilinear sample of the map at the pixel's centre.
            let fy = ((y as f32 + 0.5) * mh as f32 / img.height as f32 - 0.5).clamp(0.0, (mh - 1) as f32);
            let fx = ((x as f32 + 0.5) * mw as f32 / img.width as f32 - 0.5).clamp(0.0, (mw - 1) as f32);
            let (y0, x0) = (fy.floor() as usize, fx.floor() as usize);
            let (y1, x1) = ((y0 + 1).min(mh - 1), (x0 + 1).min(mw - 1));
            let (ty, tx) = (fy - y0 as f32, fx - x0 as f32);
            let v = map[[y0, x0]] * (1.0 - ty) * (1.0 - tx)
                + map[[y0, x1]] * (1.0 - ty) * tx
                + map[[y1, x0]] * ty * (1.0 - tx)
                + map[[y1, x1]] * ty * tx;
            if v < cut {
                let i = (y * img.width as usize + x) * 4;
                for c in 0..3 {
                    out.pixels[i + c] /= 4;
                }
            }
        }
    }
    out
}
