//! Colour conversion: a captured screen (BGRA) into the I420 the encoders take, and a decoded
//! picture (I420) into the RGBA a canvas draws.
//!
//! The conversion runs once per changed frame, on 2 million pixels at 1080p, so it goes
//! through `yuvutils-rs` (SSE/AVX); [`bgra_to_i420_scalar`] is the plain loop it is checked and
//! measured against. Both use BT.601 with limited range, which is what a VP8 or VP9 stream
//! that says nothing of its colours is decoded as.

use yuvutils_rs::{
    BufferStoreMut, YuvConversionMode, YuvPackedImage, YuvPlanarImage, YuvPlanarImageMut, YuvRange,
    YuvStandardMatrix, bgra_to_yuv420, yuv420_to_rgba, yuyv422_to_yuv420,
};

use crate::MediaError;
use crate::frame::I420Frame;

/// Converts a `width × height` BGRA picture with rows `stride` bytes apart into `frame`,
/// shrunk by the whole factor `scale` (each output pixel the mean of a `scale × scale` block).
/// `frame` must be `width / scale × height / scale`, each rounded down to even; what is left
/// over on the right and bottom is cropped.
pub fn bgra_to_i420(
    bgra: &[u8],
    stride: usize,
    width: u32,
    height: u32,
    scale: u32,
    frame: &mut I420Frame,
) -> Result<(), MediaError> {
    check(bgra, stride, width, height, scale, frame)?;
    if scale == 1 {
        return convert(bgra, stride, frame);
    }
    let (out_w, out_h) = (frame.width() as usize, frame.height() as usize);
    let scale = scale as usize;
    let mut small = vec![0u8; out_w * out_h * 4];
    for (oy, row) in small.chunks_exact_mut(out_w * 4).enumerate() {
        for (ox, pixel) in row.chunks_exact_mut(4).enumerate() {
            let mut sum = [0u32; 4];
            for y in oy * scale..(oy + 1) * scale {
                let at = y * stride + ox * scale * 4;
                for source in bgra[at..at + scale * 4].chunks_exact(4) {
                    for (s, v) in sum.iter_mut().zip(source) {
                        *s += u32::from(*v);
                    }
                }
            }
            let n = (scale * scale) as u32;
            for (p, s) in pixel.iter_mut().zip(sum) {
                *p = ((s + n / 2) / n) as u8;
            }
        }
    }
    convert(&small, out_w * 4, frame)
}

fn check(
    bgra: &[u8],
    stride: usize,
    width: u32,
    height: u32,
    scale: u32,
    frame: &I420Frame,
) -> Result<(), MediaError> {
    let wanted = (scale.max(1), (width / scale.max(1)) & !1, (height / scale.max(1)) & !1);
    if scale == 0 || (scale, frame.width(), frame.height()) != wanted {
        return Err(MediaError::BadSize(format!(
            "{width}×{height} shrunk {scale} times does not make a {}×{} picture",
            frame.width(),
            frame.height()
        )));
    }
    if stride < width as usize * 4
        || bgra.len() < stride * (height as usize - 1) + width as usize * 4
    {
        return Err(MediaError::BadSize(format!(
            "{} bytes with rows {stride} apart cannot hold {width}×{height} BGRA",
            bgra.len()
        )));
    }
    Ok(())
}

/// `frame`'s three planes, as yuvutils-rs writes I420.
fn planar(frame: &mut I420Frame) -> YuvPlanarImageMut<'_, u8> {
    let (width, height) = (frame.width(), frame.height());
    let (y, u, v) = frame.planes_mut();
    YuvPlanarImageMut {
        y_plane: BufferStoreMut::Borrowed(y),
        y_stride: width,
        u_plane: BufferStoreMut::Borrowed(u),
        u_stride: width / 2,
        v_plane: BufferStoreMut::Borrowed(v),
        v_stride: width / 2,
        width,
        height,
    }
}

/// The top-left `frame`-sized part of `bgra`, converted as it is.
fn convert(bgra: &[u8], stride: usize, frame: &mut I420Frame) -> Result<(), MediaError> {
    let mut planar = planar(frame);
    bgra_to_yuv420(
        &mut planar,
        bgra,
        stride as u32,
        YuvRange::Limited,
        YuvStandardMatrix::Bt601,
        YuvConversionMode::Balanced,
    )
    .map_err(|e| MediaError::BadSize(format!("colour conversion: {e}")))
}

/// A camera's packed YUYV (4:2:2) picture, rows `stride` bytes apart, into `frame` of the same
/// size (chroma from the upper row of each pair).
pub fn yuyv_to_i420(yuyv: &[u8], stride: usize, frame: &mut I420Frame) -> Result<(), MediaError> {
    let (width, height) = (frame.width(), frame.height());
    if stride < width as usize * 2
        || yuyv.len() < stride * (height as usize - 1) + width as usize * 2
    {
        return Err(MediaError::BadSize(format!(
            "{} bytes with rows {stride} apart cannot hold {width}×{height} YUYV",
            yuyv.len()
        )));
    }
    // yuvutils-rs takes only tightly packed rows, of exactly the picture's size.
    let row = width as usize * 2;
    let tight: std::borrow::Cow<'_, [u8]> = if stride == row {
        yuyv[..row * height as usize].into()
    } else {
        yuyv.chunks(stride).take(height as usize).flat_map(|r| &r[..row]).copied().collect()
    };
    let packed = YuvPackedImage { yuy: &tight, yuy_stride: row as u32, width, height };
    yuyv422_to_yuv420(&mut planar(frame), &packed)
        .map_err(|e| MediaError::BadSize(format!("colour conversion: {e}")))
}

/// `frame` as opaque RGBA rows, tightly packed, into `rgba` (resized to fit): what a canvas's
/// `ImageData` holds.
pub fn i420_to_rgba(frame: &I420Frame, rgba: &mut Vec<u8>) -> Result<(), MediaError> {
    let (width, height) = (frame.width(), frame.height());
    let luma = (width * height) as usize;
    let (y, chroma) = frame.data().split_at(luma);
    let (u, v) = chroma.split_at(luma / 4);
    let planar = YuvPlanarImage {
        y_plane: y,
        y_stride: width,
        u_plane: u,
        u_stride: width / 2,
        v_plane: v,
        v_stride: width / 2,
        width,
        height,
    };
    rgba.resize(luma * 4, 0);
    yuv420_to_rgba(&planar, rgba, width * 4, YuvRange::Limited, YuvStandardMatrix::Bt601)
        .map_err(|e| MediaError::BadSize(format!("colour conversion: {e}")))
}

/// The same as [`bgra_to_i420`] at scale 1, one pixel at a time in integer BT.601: the
/// reference the SIMD conversion is checked and benchmarked against.
pub fn bgra_to_i420_scalar(
    bgra: &[u8],
    stride: usize,
    frame: &mut I420Frame,
) -> Result<(), MediaError> {
    let (width, height) = (frame.width() as usize, frame.height() as usize);
    check(bgra, stride, width as u32, height as u32, 1, frame)?;
    let (y_plane, u_plane, v_plane) = frame.planes_mut();
    let rgb = |x: usize, y: usize| {
        let at = y * stride + x * 4;
        [i32::from(bgra[at + 2]), i32::from(bgra[at + 1]), i32::from(bgra[at])]
    };
    for y in 0..height {
        for x in 0..width {
            let [r, g, b] = rgb(x, y);
            y_plane[y * width + x] = (16 + ((66 * r + 129 * g + 25 * b + 128) >> 8)) as u8;
        }
    }
    for cy in 0..height / 2 {
        for cx in 0..width / 2 {
            let mut sum = [0i32; 3];
            for (dx, dy) in [(0, 0), (1, 0), (0, 1), (1, 1)] {
                let p = rgb(cx * 2 + dx, cy * 2 + dy);
                for (s, v) in sum.iter_mut().zip(p) {
                    *s += v;
                }
            }
            let [r, g, b] = sum.map(|s| (s + 2) / 4);
            let at = cy * (width / 2) + cx;
            u_plane[at] = (128 + ((-38 * r - 74 * g + 112 * b + 128) >> 8)) as u8;
            v_plane[at] = (128 + ((112 * r - 94 * g - 18 * b + 128) >> 8)) as u8;
        }
    }
    Ok(())
}

#[cfg(test)]
mod tests {
    use super::*;

    /// A busy BGRA picture: gradients and a checkerboard, so every channel and edge matters.
    fn picture(width: usize, height: usize) -> Vec<u8> {
        let mut bgra = Vec::with_capacity(width * height * 4);
        for y in 0..height {
            for x in 0..width {
                let check = if (x / 3 + y / 3) % 2 == 0 { 255 } else { 0 };
                bgra.extend_from_slice(&[(x % 256) as u8, (y % 256) as u8, check, 255]);
            }
        }
        bgra
    }

    #[test]
    fn the_simd_conversion_matches_the_plain_loop() {
        let (w, h) = (322, 182);
        let bgra = picture(w, h);
        let mut fast = I420Frame::black(w as u32, h as u32).unwrap();
        let mut plain = fast.clone();
        bgra_to_i420(&bgra, w * 4, w as u32, h as u32, 1, &mut fast).unwrap();
        bgra_to_i420_scalar(&bgra, w * 4, &mut plain).unwrap();
        let worst =
            fast.data().iter().zip(plain.data()).map(|(a, b)| a.abs_diff(*b)).max().unwrap();
        assert!(worst <= 2, "the SIMD conversion differs by up to {worst}");
    }

    #[test]
    fn a_picture_comes_back_to_rgba_with_its_colours() {
        let (w, h) = (322, 182);
        let bgra = picture(w, h);
        let mut frame = I420Frame::black(w as u32, h as u32).unwrap();
        bgra_to_i420(&bgra, w * 4, w as u32, h as u32, 1, &mut frame).unwrap();
        let mut rgba = Vec::new();
        i420_to_rgba(&frame, &mut rgba).unwrap();
        assert_eq!(rgba.len(), w * h * 4);
        // Chroma is shared by 2×2 pixels, so a checkerboard's edges blur; its mean holds.
        let mean = |bytes: &[u8], channel: usize| {
            bytes.chunks_exact(4).map(|p| f64::from(p[channel])).sum::<f64>() / (w * h) as f64
        };
        for (rgba_channel, bgra_channel) in [(0, 2), (1, 1), (2, 0)] {
            let (got, want) = (mean(&rgba, rgba_channel), mean(&bgra, bgra_channel));
            assert!((got - want).abs() < 4.0, "channel {rgba_channel}: {got:.1} against {want:.1}");
        }
        assert!(rgba.chunks_exact(4).all(|p| p[3] == 255), "opaque");
    }

    #[test]
    fn a_cameras_yuyv_keeps_its_luma_and_takes_its_chroma_from_every_other_row() {
        let (w, h) = (4usize, 2usize);
        // Row 0: Y 10,20,30,40 with U 100/V 150 then U 110/V 160; row 1 the same, chroma +20.
        let row0 = [10u8, 100, 20, 150, 30, 110, 40, 160];
        let row1 = [50u8, 120, 60, 170, 70, 130, 80, 180];
        // Rows padded to 12 bytes, as some cameras align them.
        let mut yuyv = Vec::new();
        for row in [&row0[..], &row1[..]] {
            yuyv.extend_from_slice(row);
            yuyv.extend_from_slice(&[0; 4]);
        }
        let mut frame = I420Frame::black(w as u32, h as u32).unwrap();
        yuyv_to_i420(&yuyv, 12, &mut frame).unwrap();
        let (y, u, v) = frame.planes_mut();
        assert_eq!(y, [10, 20, 30, 40, 50, 60, 70, 80]);
        assert_eq!((&u[..], &v[..]), (&[100, 110][..], &[150, 160][..]));
        assert!(yuyv_to_i420(&yuyv[..10], 12, &mut frame).is_err());
    }

    #[test]
    fn white_and_black_land_on_video_range() {
        let (w, h) = (4usize, 2usize);
        let mut bgra = vec![255u8; w * h * 4];
        bgra[..8].fill(0);
        let mut frame = I420Frame::black(w as u32, h as u32).unwrap();
        bgra_to_i420(&bgra, w * 4, w as u32, h as u32, 1, &mut frame).unwrap();
        assert_eq!(frame.luma(0, 0), 16);
        assert_eq!(frame.luma(3, 0), 235);
    }

    #[test]
    fn a_shrunk_picture_averages_each_block() {
        // 4×4 → 2×2: the top-left 2×2 block is half white, half black.
        let (w, h) = (4usize, 4usize);
        let mut bgra = vec![0u8; w * h * 4];
        bgra[..8].fill(255);
        let mut frame = I420Frame::black(2, 2).unwrap();
        bgra_to_i420(&bgra, w * 4, w as u32, h as u32, 2, &mut frame).unwrap();
        let mid = frame.luma(0, 0);
        assert!((120..=130).contains(&mid), "grey expected, got {mid}");
        assert_eq!(frame.luma(1, 1), 16);
    }

    #[test]
    fn a_buffer_too_small_or_a_wrong_size_is_refused() {
        let mut frame = I420Frame::black(4, 4).unwrap();
        assert!(bgra_to_i420(&[0; 16], 16, 4, 4, 1, &mut frame).is_err());
        assert!(bgra_to_i420(&[0; 64], 16, 4, 4, 2, &mut frame).is_err());
        assert!(bgra_to_i420(&[0; 64], 16, 4, 4, 0, &mut frame).is_err());
    }
}
