//! VP8 and VP9 through libvpx: an encoder tuned for live video (camera or screen) and a decoder.
//!
//! This is the crate's only unsafe code: a thin layer over libvpx's C API. Each codec context
//! is owned by one value, initialised in `new` and destroyed in `Drop`; pictures are borrowed
//! only for the duration of one call, and every packet libvpx hands out is copied before the
//! next call can invalidate it.
#![allow(unsafe_code)]

use std::ffi::CStr;
use std::mem::MaybeUninit;
use std::os::raw::{c_int, c_long, c_ulong};
use std::ptr;

use vpx_sys::{
    VPX_CODEC_OK, VPX_DECODER_ABI_VERSION, VPX_DL_REALTIME, VPX_EFLAG_FORCE_KF,
    VPX_ENCODER_ABI_VERSION, VPX_FRAME_IS_KEY, vp8e_enc_control_id, vpx_codec_ctx_t,
    vpx_codec_cx_pkt_kind, vpx_codec_enc_cfg_t, vpx_codec_err_t, vpx_codec_iter_t, vpx_image_t,
    vpx_img_fmt, vpx_rc_mode,
};

use crate::MediaError;
use crate::frame::{I420Frame, check_size};

/// One whole encoded frame, as one RTP sample carries it.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct VpxFrame {
    pub data: Vec<u8>,
    /// A keyframe decodes on its own; the others need the frames before them.
    pub keyframe: bool,
}

/// The two codecs libvpx gives us; Chromium decodes both.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub enum VideoCodec {
    Vp8,
    Vp9,
}

/// What a picture shows, which decides how it is best encoded.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub enum Content {
    /// A camera: motion everywhere, noise; smooth is better than sharp.
    Camera,
    /// A screen: text and flat colours that must stay sharp, long still stretches, and
    /// sudden large changes (a scroll, a new slide).
    Screen,
}

/// How an encoder is set up.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub struct VpxConfig {
    pub codec: VideoCodec,
    pub content: Content,
    pub width: u32,
    pub height: u32,
    pub fps: u32,
    /// Target bitrate in kilobits per second.
    pub bitrate_kbps: u32,
}

impl VpxConfig {
    /// A camera in VP8, as every browser takes it.
    pub fn camera(width: u32, height: u32, fps: u32, bitrate_kbps: u32) -> Self {
        let (codec, content) = (VideoCodec::Vp8, Content::Camera);
        Self { codec, content, width, height, fps, bitrate_kbps }
    }

    /// A screen in `codec`, tuned for text.
    pub fn screen(codec: VideoCodec, width: u32, height: u32, fps: u32, bitrate_kbps: u32) -> Self {
        Self { codec, content: Content::Screen, width, height, fps, bitrate_kbps }
    }
}

/// A VP8 or VP9 encoder for live video: no look-ahead (each frame comes out as it goes in),
/// constant bitrate, error resilient (a lost frame does not corrupt later ones for long), and
/// keyframes when asked for (a new viewer, a picture-loss report). For a screen it uses
/// libvpx's screen-content tools.
pub struct VpxEncoder {
    ctx: Box<vpx_codec_ctx_t>,
    /// libvpx's configuration as given to it, kept to change the bitrate later.
    cfg: Box<vpx_codec_enc_cfg_t>,
    config: VpxConfig,
    pts: i64,
}

impl std::fmt::Debug for VpxEncoder {
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        f.debug_struct("VpxEncoder").field("config", &self.config).finish_non_exhaustive()
    }
}

// SAFETY: the context is used only through `&mut self`; libvpx keeps no thread affinity.
unsafe impl Send for VpxEncoder {}

impl VpxEncoder {
    pub fn new(config: VpxConfig) -> Result<Self, MediaError> {
        check_size(config.width, config.height)?;
        if config.fps == 0 || config.bitrate_kbps == 0 {
            return Err(MediaError::BadSetting("frame rate and bitrate must be above zero".into()));
        }
        let screen = config.content == Content::Screen;
        // SAFETY: the `vpx_codec_vp*_cx` functions return static interfaces; `cfg` is read only
        // after libvpx has filled it (it holds enums with no zero value, so it is never zeroed);
        // `ctx` is boxed so its address stays fixed for libvpx.
        unsafe {
            let iface = match config.codec {
                VideoCodec::Vp8 => vpx_sys::vpx_codec_vp8_cx(),
                VideoCodec::Vp9 => vpx_sys::vpx_codec_vp9_cx(),
            };
            let mut cfg = MaybeUninit::<vpx_codec_enc_cfg_t>::uninit();
            let status = vpx_sys::vpx_codec_enc_config_default(iface, cfg.as_mut_ptr(), 0);
            check("configure", status, None)?;
            let mut cfg = cfg.assume_init();
            cfg.g_w = config.width;
            cfg.g_h = config.height;
            cfg.g_timebase.num = 1;
            cfg.g_timebase.den = config.fps as c_int;
            cfg.rc_target_bitrate = config.bitrate_kbps;
            cfg.rc_end_usage = vpx_rc_mode::VPX_CBR;
            cfg.g_lag_in_frames = 0;
            cfg.g_error_resilient = 1;
            cfg.g_threads = encoder_threads(config.width, config.height);
            // A picture-loss report brings a keyframe at once; the periodic one is a safety net.
            cfg.kf_max_dist = config.fps * 10;
            // WebRTC's rate control for both: a buffer of a second rather than libvpx's six,
            // so the rate follows a lowered target within a second instead of overshooting it
            // for many; and no frame is dropped to save bits (the quantizer rises instead): a
            // scroll stays smooth, and with drops camera video at 10% loss fell from 30 to 16 fps.
            cfg.rc_dropframe_thresh = 0;
            cfg.rc_min_quantizer = 2;
            cfg.rc_buf_sz = 1000;
            cfg.rc_buf_initial_sz = 500;
            cfg.rc_buf_optimal_sz = 600;
            if screen {
                // Once the screen holds still, the pipeline refines the picture and the
                // quantizer goes low enough for crisp glyphs.
                cfg.rc_max_quantizer = 52;
                cfg.rc_undershoot_pct = 50;
                cfg.rc_overshoot_pct = 50;
            } else {
                // VP8 may code the picture smaller when even its coarsest quantizer costs too
                // much (720p at 100 kbit/s).
                cfg.rc_max_quantizer = 56;
                cfg.rc_undershoot_pct = 100;
                cfg.rc_overshoot_pct = 15;
                cfg.rc_resize_allowed = u32::from(config.codec == VideoCodec::Vp8);
            }
            let mut ctx: Box<vpx_codec_ctx_t> = Box::new(MaybeUninit::zeroed().assume_init());
            let ver = VPX_ENCODER_ABI_VERSION as c_int;
            check("init", vpx_sys::vpx_codec_enc_init_ver(&mut *ctx, iface, &cfg, 0, ver), None)?;
            let mut encoder = Self { ctx, cfg: Box::new(cfg), config, pts: 0 };
            for (control, value) in encoder_controls(config) {
                let status =
                    vpx_sys::vpx_codec_control_(&mut *encoder.ctx, control as c_int, value);
                check("set up the encoder", status, Some(&mut encoder.ctx))?;
            }
            Ok(encoder)
        }
    }

    /// The target bitrate now, in kilobits per second.
    pub fn bitrate_kbps(&self) -> u32 {
        self.config.bitrate_kbps
    }

    /// Aims the following frames at `bitrate_kbps` (above zero): what the network carries now.
    pub fn set_bitrate(&mut self, bitrate_kbps: u32) -> Result<(), MediaError> {
        if bitrate_kbps == 0 {
            return Err(MediaError::BadSetting("bitrate must be above zero".into()));
        }
        self.cfg.rc_target_bitrate = bitrate_kbps;
        // SAFETY: `ctx` is initialised; `cfg` is the configuration it was made with, changed
        // only in its bitrate, which libvpx allows between frames.
        unsafe {
            let status = vpx_sys::vpx_codec_enc_config_set(&mut *self.ctx, &*self.cfg);
            check("change the bitrate", status, Some(&mut self.ctx))?;
        }
        self.config.bitrate_kbps = bitrate_kbps;
        Ok(())
    }

    /// Encodes one picture; returns the whole frames it produced (one, or none when rate
    /// control drops the picture). `keyframe` forces a keyframe.
    pub fn encode(
        &mut self,
        picture: &I420Frame,
        keyframe: bool,
    ) -> Result<Vec<VpxFrame>, MediaError> {
        if (picture.width(), picture.height()) != (self.config.width, self.config.height) {
            return Err(MediaError::BadSize(format!(
                "a {}×{} picture for a {}×{} encoder",
                picture.width(),
                picture.height(),
                self.config.width,
                self.config.height
            )));
        }
        let flags = if keyframe { VPX_EFLAG_FORCE_KF as c_long } else { 0 };
        let mut frames = Vec::new();
        // SAFETY: `image` only points into `picture`, which outlives the encode call (libvpx
        // copies what it keeps); packets are copied out before the next libvpx call.
        unsafe {
            let mut image = MaybeUninit::<vpx_image_t>::zeroed().assume_init();
            let wrapped = vpx_sys::vpx_img_wrap(
                &mut image,
                vpx_img_fmt::VPX_IMG_FMT_I420,
                self.config.width,
                self.config.height,
                1,
                picture.data().as_ptr().cast_mut(),
            );
            if wrapped.is_null() {
                return Err(MediaError::Codec {
                    op: "wrap picture",
                    detail: "refused by libvpx".into(),
                });
            }
            let status = vpx_sys::vpx_codec_encode(
                &mut *self.ctx,
                &image,
                self.pts,
                1,
                flags,
                VPX_DL_REALTIME as c_ulong,
            );
            check("encode", status, Some(&mut self.ctx))?;
            self.pts += 1;
            let mut iter: vpx_codec_iter_t = ptr::null();
            loop {
                let packet = vpx_sys::vpx_codec_get_cx_data(&mut *self.ctx, &mut iter);
                if packet.is_null() {
                    break;
                }
                if (*packet).kind != vpx_codec_cx_pkt_kind::VPX_CODEC_CX_FRAME_PKT {
                    continue;
                }
                let frame = (*packet).data.frame;
                if frame.buf.is_null() || frame.sz == 0 {
                    continue;
                }
                let bytes =
                    std::slice::from_raw_parts(frame.buf.cast::<u8>(), frame.sz as usize).to_vec();
                frames
                    .push(VpxFrame { data: bytes, keyframe: frame.flags & VPX_FRAME_IS_KEY != 0 });
            }
        }
        Ok(frames)
    }
}

/// Threads for one encoder, as WebRTC chooses them: more only for large pictures on machines
/// with cores to spare. libvpx's threads wait for each other by spinning, so on a busy machine
/// (two cores, a browser rendering beside us) a second thread made 1080p three times slower:
/// 11 fps instead of 30 in `make bench-media`.
fn encoder_threads(width: u32, height: u32) -> u32 {
    let cores = std::thread::available_parallelism().map_or(1, |n| n.get());
    let pixels = width * height;
    match cores {
        9.. if pixels >= 1920 * 1080 => 8,
        7.. if pixels >= 1280 * 960 => 3,
        4.. if pixels >= 640 * 480 => 2,
        _ => 1,
    }
}

/// libvpx's settings for each codec and content, as WebRTC uses them on desktops.
fn encoder_controls(config: VpxConfig) -> Vec<(u32, c_int)> {
    use vp8e_enc_control_id::*;
    let screen = config.content == Content::Screen;
    match config.codec {
        VideoCodec::Vp8 => {
            // Speed -6, as WebRTC on desktops. At -12 a 1080p scroll took a little less time
            // per frame, but its larger frames made rate control drop half of them.
            let mut controls = vec![(VP8E_SET_CPUUSED as u32, -6)];
            if !screen {
                // A keyframe at most this many times an average frame (WebRTC's rule for a
                // 600 ms buffer): on a thin link a keyframe that overflows the queue is lost,
                // and each one the receivers ask for to replace it is lost the same way.
                let most = (config.fps.saturating_mul(30)).max(300);
                controls.push((VP8E_SET_MAX_INTRA_BITRATE_PCT as u32, most as c_int));
            }
            if screen {
                // Screen-content mode 1: tools for text and flat areas; the static threshold
                // skips blocks that did not change, which on a screen is most of them.
                controls.push((VP8E_SET_SCREEN_CONTENT_MODE as u32, 1));
                controls.push((VP8E_SET_STATIC_THRESHOLD as u32, 100));
            }
            controls
        }
        VideoCodec::Vp9 => {
            let mut controls = vec![
                (VP8E_SET_CPUUSED as u32, if screen { 8 } else { 7 }),
                (VP9E_SET_ROW_MT as u32, 1),
                (VP9E_SET_TILE_COLUMNS as u32, 1),
                (VP9E_SET_AQ_MODE as u32, 3),
            ];
            if screen {
                controls.push((VP9E_SET_TUNE_CONTENT as u32, 1));
            }
            controls
        }
    }
}

impl Drop for VpxEncoder {
    fn drop(&mut self) {
        // SAFETY: the context was initialised in `new` and is destroyed once, here.
        unsafe {
            vpx_sys::vpx_codec_destroy(&mut *self.ctx);
        }
    }
}

/// A VP8 or VP9 decoder.
pub struct VpxDecoder {
    ctx: Box<vpx_codec_ctx_t>,
}

impl std::fmt::Debug for VpxDecoder {
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        f.write_str("VpxDecoder")
    }
}

// SAFETY: as for the encoder.
unsafe impl Send for VpxDecoder {}

impl VpxDecoder {
    pub fn new(codec: VideoCodec) -> Result<Self, MediaError> {
        // SAFETY: as in `VpxEncoder::new`; a null configuration lets libvpx choose.
        unsafe {
            let mut ctx: Box<vpx_codec_ctx_t> = Box::new(MaybeUninit::zeroed().assume_init());
            let iface = match codec {
                VideoCodec::Vp8 => vpx_sys::vpx_codec_vp8_dx(),
                VideoCodec::Vp9 => vpx_sys::vpx_codec_vp9_dx(),
            };
            let ver = VPX_DECODER_ABI_VERSION as c_int;
            check(
                "init decoder",
                vpx_sys::vpx_codec_dec_init_ver(&mut *ctx, iface, ptr::null(), 0, ver),
                None,
            )?;
            Ok(Self { ctx })
        }
    }

    /// Decodes one whole frame; returns the picture it shows, if any.
    pub fn decode(&mut self, frame: &[u8]) -> Result<Option<I420Frame>, MediaError> {
        let len = u32::try_from(frame.len()).map_err(|_| MediaError::Codec {
            op: "decode",
            detail: "frame larger than 4 GiB".into(),
        })?;
        // SAFETY: libvpx reads `len` bytes of `frame` during the call; the image it returns
        // belongs to the context and is copied out before the next call.
        unsafe {
            let status =
                vpx_sys::vpx_codec_decode(&mut *self.ctx, frame.as_ptr(), len, ptr::null_mut(), 0);
            check("decode", status, Some(&mut self.ctx))?;
            let mut iter: vpx_codec_iter_t = ptr::null();
            let image = vpx_sys::vpx_codec_get_frame(&mut *self.ctx, &mut iter);
            if image.is_null() {
                return Ok(None);
            }
            let image = &*image;
            let (width, height) = (image.d_w, image.d_h);
            // Our frames are I420 with even sides; a stream that is not cannot be shown.
            if image.fmt != vpx_img_fmt::VPX_IMG_FMT_I420 {
                return Err(MediaError::BadSize(format!(
                    "a decoded picture in {:?}, not I420",
                    image.fmt
                )));
            }
            check_size(width, height)?;
            if (image.stride[0] as u32) < width
                || (image.stride[1] as u32) < width / 2
                || (image.stride[2] as u32) < width / 2
            {
                return Err(MediaError::Codec {
                    op: "decode",
                    detail: "rows shorter than the picture".into(),
                });
            }
            let mut data = Vec::with_capacity((width * height) as usize * 3 / 2);
            for (plane, (w, h)) in
                [(width, height), (width / 2, height / 2), (width / 2, height / 2)]
                    .into_iter()
                    .enumerate()
            {
                let stride = image.stride[plane] as usize;
                for row in 0..h as usize {
                    let start = image.planes[plane].add(row * stride);
                    data.extend_from_slice(std::slice::from_raw_parts(start, w as usize));
                }
            }
            I420Frame::from_planes(width, height, data).map(Some)
        }
    }
}

impl Drop for VpxDecoder {
    fn drop(&mut self) {
        // SAFETY: initialised in `new`, destroyed once.
        unsafe {
            vpx_sys::vpx_codec_destroy(&mut *self.ctx);
        }
    }
}

/// Turns a libvpx status into a result carrying libvpx's own explanation.
///
/// SAFETY (for callers): `ctx`, when given, must be an initialised context.
unsafe fn check(
    op: &'static str,
    status: vpx_codec_err_t,
    ctx: Option<&mut vpx_codec_ctx_t>,
) -> Result<(), MediaError> {
    if status == VPX_CODEC_OK {
        return Ok(());
    }
    // SAFETY: libvpx returns static, NUL-terminated strings (or null, checked).
    let text = |p: *const std::os::raw::c_char| unsafe {
        if p.is_null() { String::new() } else { CStr::from_ptr(p).to_string_lossy().into_owned() }
    };
    let detail = match ctx {
        Some(ctx) => {
            let detail = text(unsafe { vpx_sys::vpx_codec_error_detail(ctx) });
            let error = text(unsafe { vpx_sys::vpx_codec_error(ctx) });
            if detail.is_empty() { error } else { format!("{error}: {detail}") }
        }
        None => text(unsafe { vpx_sys::vpx_codec_err_to_string(status) }),
    };
    Err(MediaError::Codec { op, detail })
}
