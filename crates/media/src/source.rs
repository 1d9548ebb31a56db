//! Video sources: the trait every capture implements, and the synthetic camera.

use crate::MediaError;
use crate::frame::{I420Frame, check_size};

/// Something that produces pictures: a screen, a camera, or a synthetic twin.
pub trait VideoSource: Send {
    /// The size of every frame it captures.
    fn size(&self) -> (u32, u32);
    /// Frames per second it is meant to be read at.
    fn frame_rate(&self) -> u32;
    /// Captures the next picture into `frame`, which has [`VideoSource::size`]. A source that
    /// can tell may answer [`Captured::Unchanged`] and leave `frame` as it was; the pipeline then
    /// stops encoding it once it has been refined.
    fn capture(&mut self, frame: &mut I420Frame) -> Result<Captured, MediaError>;
}

/// Whether a capture brought a new picture.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub enum Captured {
    Changed,
    /// The same picture as the last capture (a still screen).
    Unchanged,
}

/// Bits in each row of the stamp.
const STAMP_BITS: u32 = 32;
/// Luma of a stamp's 0 and 1 blocks, and the band around the middle that is neither: a block
/// read inside it means there is no stamp (or the picture is too damaged to trust).
const STAMP_DARK: u8 = 16;
const STAMP_LIGHT: u8 = 235;
const STAMP_UNSURE: std::ops::RangeInclusive<u8> = 80..=170;

/// What the synthetic camera writes into each frame, and [`read_stamp`] reads back.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub struct Stamp {
    /// Counts from 0 for the camera's first frame.
    pub frame: u32,
    /// When the frame was captured: the UNIX time in milliseconds, modulo 2³² (see
    /// [`wall_clock_millis`]), so that any receiver on the same machine, a browser included
    /// (`Date.now() % 2 ** 32`), can tell how long the frame took to reach it.
    pub millis: u32,
}

/// A camera for machines with none: colour bars, a box that moves a little every frame (so
/// every frame differs and a frozen picture shows), and a [`Stamp`] in the top-left corner as
/// two rows of 32 black or white blocks, large enough to survive VP8 at low bitrates.
#[derive(Debug)]
pub struct SyntheticCamera {
    width: u32,
    height: u32,
    fps: u32,
    frame: u32,
}

impl SyntheticCamera {
    /// The smallest picture that still holds the stamp.
    pub const MIN_SIZE: (u32, u32) = (320, 180);

    pub fn new(width: u32, height: u32, fps: u32) -> Result<Self, MediaError> {
        check_size(width, height)?;
        if width < Self::MIN_SIZE.0 || height < Self::MIN_SIZE.1 {
            return Err(MediaError::BadSize(format!(
                "{width}×{height}: the synthetic camera needs at least {}×{}",
                Self::MIN_SIZE.0,
                Self::MIN_SIZE.1
            )));
        }
        if !(1..=120).contains(&fps) {
            return Err(MediaError::BadSetting(format!(
                "{fps} frames per second: must be 1 to 120"
            )));
        }
        Ok(Self { width, height, fps, frame: 0 })
    }
}

impl VideoSource for SyntheticCamera {
    fn size(&self) -> (u32, u32) {
        (self.width, self.height)
    }

    fn frame_rate(&self) -> u32 {
        self.fps
    }

    fn capture(&mut self, frame: &mut I420Frame) -> Result<Captured, MediaError> {
        if (frame.width(), frame.height()) != (self.width, self.height) {
            return Err(MediaError::BadSize(format!(
                "asked for a {}×{} frame from a {}×{} camera",
                frame.width(),
                frame.height(),
                self.width,
                self.height
            )));
        }
        let millis = wall_clock_millis();
        draw_bars(frame);
        draw_moving_box(frame, self.frame);
        draw_stamp(frame, Stamp { frame: self.frame, millis });
        self.frame = self.frame.wrapping_add(1);
        Ok(Captured::Changed)
    }
}

/// The wall clock as a [`Stamp`] carries it: UNIX milliseconds modulo 2³². The delay of a
/// stamped frame is `wall_clock_millis().wrapping_sub(stamp.millis)`.
pub fn wall_clock_millis() -> u32 {
    // Truncation is the modulo.
    crate::audio::wall_clock_ms() as u64 as u32
}

/// Side of one stamp block, in pixels: even (so chroma lines up) and a fortieth of the width.
fn block_side(width: u32) -> u32 {
    (width / 40) & !1
}

/// BT.601 colour bars: white, yellow, cyan, green, magenta, red, blue, black.
fn draw_bars(frame: &mut I420Frame) {
    const BARS: [(u8, u8, u8); 8] = [
        (235, 128, 128),
        (210, 16, 146),
        (170, 166, 16),
        (145, 54, 34),
        (106, 202, 222),
        (81, 90, 240),
        (41, 240, 110),
        (16, 128, 128),
    ];
    let (w, h) = (frame.width() as usize, frame.height() as usize);
    let bar_of = |x: usize| BARS[x * BARS.len() / w];
    let (y_plane, u_plane, v_plane) = frame.planes_mut();
    for row in y_plane.chunks_exact_mut(w).take(h) {
        for (x, px) in row.iter_mut().enumerate() {
            *px = bar_of(x).0;
        }
    }
    for (u_row, v_row) in u_plane.chunks_exact_mut(w / 2).zip(v_plane.chunks_exact_mut(w / 2)) {
        for x in 0..w / 2 {
            let (_, u, v) = bar_of(x * 2);
            u_row[x] = u;
            v_row[x] = v;
        }
    }
}

/// A grey box in the lower half that steps right every frame and wraps around.
fn draw_moving_box(frame: &mut I420Frame, n: u32) {
    let (w, h) = (frame.width(), frame.height());
    let side = (h / 4) & !1;
    let left = (n * 4) % (w - side);
    let top = h - side - h / 8;
    fill(frame, left, top, side, side, (128, 128, 128));
}

fn draw_stamp(frame: &mut I420Frame, stamp: Stamp) {
    let b = block_side(frame.width());
    // A grey plate a block wider all round, so the moving pattern never touches the bits.
    fill(frame, 0, 0, b * (STAMP_BITS + 2), b * 4, (128, 128, 128));
    for (row, value) in [stamp.frame, stamp.millis].into_iter().enumerate() {
        for bit in 0..STAMP_BITS {
            let one = value >> (STAMP_BITS - 1 - bit) & 1 == 1;
            let luma = if one { STAMP_LIGHT } else { STAMP_DARK };
            fill(frame, b * (1 + bit), b * (1 + row as u32), b, b, (luma, 128, 128));
        }
    }
}

/// Reads the [`Stamp`] of a synthetic camera's frame (after any codec), or `None` if the
/// picture carries none.
pub fn read_stamp(frame: &I420Frame) -> Option<Stamp> {
    let b = block_side(frame.width());
    if b < 2 || frame.height() < b * 4 {
        return None;
    }
    let mut rows = [0u32; 2];
    for (row, value) in rows.iter_mut().enumerate() {
        for bit in 0..STAMP_BITS {
            let luma = frame.luma(b * (1 + bit) + b / 2, b * (1 + row as u32) + b / 2);
            if STAMP_UNSURE.contains(&luma) {
                return None;
            }
            *value = *value << 1 | u32::from(luma > 128);
        }
    }
    Some(Stamp { frame: rows[0], millis: rows[1] })
}

/// Fills a rectangle (even position and size) with one colour.
fn fill(
    frame: &mut I420Frame,
    left: u32,
    top: u32,
    width: u32,
    height: u32,
    (y, u, v): (u8, u8, u8),
) {
    let stride = frame.width() as usize;
    let (right, bottom) =
        ((left + width).min(frame.width()) as usize, (top + height).min(frame.height()) as usize);
    let (left, top) = (left as usize, top as usize);
    let (y_plane, u_plane, v_plane) = frame.planes_mut();
    for row in top..bottom {
        y_plane[row * stride + left..row * stride + right].fill(y);
    }
    let chroma_stride = stride / 2;
    for row in top / 2..bottom / 2 {
        u_plane[row * chroma_stride + left / 2..row * chroma_stride + right / 2].fill(u);
        v_plane[row * chroma_stride + left / 2..row * chroma_stride + right / 2].fill(v);
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn stamp_reads_back_from_the_raw_frame() {
        let mut camera = SyntheticCamera::new(640, 360, 30).expect("camera");
        let mut frame = I420Frame::black(640, 360).expect("frame");
        for expected in 0..3 {
            camera.capture(&mut frame).expect("capture");
            let stamp = read_stamp(&frame).expect("a stamp");
            assert_eq!(stamp.frame, expected);
        }
    }

    #[test]
    fn a_plain_picture_has_no_stamp() {
        let mut grey = I420Frame::black(640, 360).expect("frame");
        grey.planes_mut().0.fill(128);
        assert_eq!(read_stamp(&grey), None);
    }

    #[test]
    fn refuses_sizes_it_cannot_draw() {
        for (w, h, fps) in
            [(0, 0, 30), (641, 360, 30), (160, 120, 30), (640, 360, 0), (99_999, 360, 30)]
        {
            assert!(SyntheticCamera::new(w, h, fps).is_err(), "{w}×{h}@{fps}");
        }
        let mut camera = SyntheticCamera::new(640, 360, 30).expect("camera");
        let mut wrong = I420Frame::black(320, 180).expect("frame");
        assert!(matches!(camera.capture(&mut wrong), Err(MediaError::BadSize(_))));
    }
}
