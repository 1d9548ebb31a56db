//! Incoming frames decoded, for front ends that cannot decode themselves (the CLI's reports, a
//! recorder, the desktop's fallback when WebCodecs says no): pictures as I420, sound as 48 kHz
//! mono PCM.

use confab_media::{I420Frame, MediaError, OpusDecoder, VideoCodec, VpxDecoder};

use crate::feed::Codec;
use crate::tracks::{IncomingFrame, IncomingTrack};

/// The most one Opus packet decodes to: 120 ms at 48 kHz.
const MAX_OPUS_SAMPLES: usize = 5760;

/// What one frame decoded to.
#[derive(Debug)]
pub enum Decoded {
    Picture(I420Frame),
    /// 48 kHz mono samples.
    Sound(Vec<i16>),
}

/// Decodes one incoming track's frames in order.
#[derive(Debug)]
pub struct TrackDecoder {
    inner: Inner,
}

#[derive(Debug)]
enum Inner {
    /// After a loss, a VP8 decoder can only start again on a keyframe.
    Vp8 {
        decoder: VpxDecoder,
        waiting_for_keyframe: bool,
    },
    Opus(OpusDecoder),
}

impl TrackDecoder {
    /// A decoder for `track`'s codec.
    pub fn for_track(track: &IncomingTrack) -> Result<Self, MediaError> {
        let inner = match Codec::from_mime_type(&track.mime_type) {
            Some(Codec::Vp8) => Inner::Vp8 {
                decoder: VpxDecoder::new(VideoCodec::Vp8)?,
                waiting_for_keyframe: true,
            },
            Some(Codec::Opus) => Inner::Opus(OpusDecoder::new()?),
            None => {
                let missing = format!("no decoder for {}", track.mime_type);
                return Err(MediaError::Unavailable(missing));
            }
        };
        Ok(Self { inner })
    }

    /// Decodes the next frame; `None` while a video decoder waits for a keyframe, or when a
    /// frame shows no picture.
    pub fn decode(&mut self, frame: &IncomingFrame) -> Result<Option<Decoded>, MediaError> {
        match &mut self.inner {
            Inner::Vp8 { decoder, waiting_for_keyframe } => {
                *waiting_for_keyframe =
                    (*waiting_for_keyframe || frame.lost_before > 0) && !frame.keyframe;
                if *waiting_for_keyframe {
                    return Ok(None);
                }
                let picture = decoder.decode(&frame.data);
                // A frame that does not decode spoils the ones after it until a keyframe.
                *waiting_for_keyframe = picture.is_err();
                Ok(picture?.map(Decoded::Picture))
            }
            Inner::Opus(decoder) => {
                let mut pcm = vec![0i16; MAX_OPUS_SAMPLES];
                let n = decoder.decode(&frame.data, &mut pcm)?;
                pcm.truncate(n);
                Ok(Some(Decoded::Sound(pcm)))
            }
        }
    }
}
