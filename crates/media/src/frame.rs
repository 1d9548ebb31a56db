//! One uncompressed picture.

use crate::MediaError;

/// Largest side we accept: 8K. Anything larger is a bug or hostile input, not a camera.
const MAX_SIDE: u32 = 7680;

/// A picture in I420 (planar YUV 4:2:0): the Y plane (`width × height`), then U and V
/// (`width/2 × height/2` each), packed without row padding.
#[derive(Clone, PartialEq, Eq)]
pub struct I420Frame {
    width: u32,
    height: u32,
    data: Vec<u8>,
}

impl std::fmt::Debug for I420Frame {
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        write!(f, "I420Frame({}×{})", self.width, self.height)
    }
}

impl I420Frame {
    /// A black picture of this size.
    pub fn black(width: u32, height: u32) -> Result<Self, MediaError> {
        check_size(width, height)?;
        let luma = (width * height) as usize;
        let mut data = vec![16u8; luma + luma / 2];
        data[luma..].fill(128);
        Ok(Self { width, height, data })
    }

    /// A picture from packed planes; `data` must be exactly `width × height × 3 / 2` bytes.
    pub fn from_planes(width: u32, height: u32, data: Vec<u8>) -> Result<Self, MediaError> {
        check_size(width, height)?;
        let expected = (width * height) as usize * 3 / 2;
        if data.len() != expected {
            return Err(MediaError::BadSize(format!(
                "{width}×{height} needs {expected} bytes of I420, got {}",
                data.len()
            )));
        }
        Ok(Self { width, height, data })
    }

    pub fn width(&self) -> u32 {
        self.width
    }

    pub fn height(&self) -> u32 {
        self.height
    }

    /// All three planes, packed.
    pub fn data(&self) -> &[u8] {
        &self.data
    }

    /// The Y, U and V planes, for writing.
    pub fn planes_mut(&mut self) -> (&mut [u8], &mut [u8], &mut [u8]) {
        let luma = (self.width * self.height) as usize;
        let (y, chroma) = self.data.split_at_mut(luma);
        let (u, v) = chroma.split_at_mut(luma / 4);
        (y, u, v)
    }

    /// The luma (brightness) of one pixel.
    pub fn luma(&self, x: u32, y: u32) -> u8 {
        self.data[(y * self.width + x) as usize]
    }
}

pub(crate) fn check_size(width: u32, height: u32) -> Result<(), MediaError> {
    if width == 0 || height == 0 || !width.is_multiple_of(2) || !height.is_multiple_of(2) {
        return Err(MediaError::BadSize(format!(
            "{width}×{height}: both sides must be even and non-zero"
        )));
    }
    if width > MAX_SIDE || height > MAX_SIDE {
        return Err(MediaError::BadSize(format!(
            "{width}×{height}: larger than {MAX_SIDE} pixels"
        )));
    }
    Ok(())
}
