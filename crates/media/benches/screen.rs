//! Screen sharing, measured on a real X display: `bench/media.mjs` runs this with `DISPLAY` set
//! to an Xvfb showing a page of code in Chromium, and scrolls or stills the page when this
//! program prints `@scroll` or `@still` (and waits for `ok` on stdin).
//!
//! Prints one JSON object as its last line: colour conversion SIMD against the plain loop; the
//! real sending pipeline (capture, convert, encode) while the page scrolls, and its CPU once the
//! page is still; and for each codec and mode, encode time, bitrate and the SSIM of what a
//! viewer decodes, while scrolling and once still, at 2.5 Mbit/s.

// A measuring program: it prints its results and stops at the first failure.
#![allow(clippy::unwrap_used, clippy::print_stdout)]

use std::io::BufRead;
use std::sync::{Arc, Mutex};
use std::time::{Duration, Instant};

use confab_media::convert::{bgra_to_i420, bgra_to_i420_scalar};
use confab_media::{
    Captured, Content, EncodedFrame, FrameSink, I420Frame, MediaError, VideoCodec, VideoPipeline,
    VpxConfig, VpxDecoder, VpxEncoder, screens,
};

const KBPS: u32 = 2500;
const RUN: Duration = Duration::from_secs(8);

fn main() {
    let screens = screens().expect("a screen to capture (run through bench/media.mjs)");
    let (width, height) = screens.open(None).expect("open the screen").size();
    let mut report = vec![format!("\"width\":{width},\"height\":{height},\"kbps\":{KBPS}")];

    // Colour conversion of one 1080p picture.
    let bgra: Vec<u8> = (0..width * height * 4).map(|i| (i * 7 % 251) as u8).collect();
    let mut picture = I420Frame::black(width, height).unwrap();
    let stride = width as usize * 4;
    let simd = median_ms(|| bgra_to_i420(&bgra, stride, width, height, 1, &mut picture).unwrap());
    let plain = median_ms(|| bgra_to_i420_scalar(&bgra, stride, &mut picture).unwrap());
    report.push(format!("\"convert_1080p_ms\":{{\"simd\":{simd:.2},\"plain_loop\":{plain:.2}}}"));

    // The sending pipeline as a meeting runs it, while the page scrolls.
    ask("@scroll");
    let sent = Arc::new(Mutex::new(Sent::default()));
    let source = screens.open(None).unwrap();
    let pipeline =
        VideoPipeline::start(source, VideoCodec::Vp8, Content::Screen, KBPS, Count(sent.clone()))
            .unwrap();
    let cpu = CpuClock::start();
    std::thread::sleep(RUN);
    let busy = cpu.percent();
    let scrolling = std::mem::take(&mut *sent.lock().unwrap());
    let fps = scrolling.frames as f64 / RUN.as_secs_f64();
    let moving_bytes = scrolling.bytes as f64 / RUN.as_secs_f64();
    report.push(format!("\"sender_fps_1080p_scrolling\":{fps:.1}"));
    report.push(format!("\"sender_cpu_percent_1080p30\":{busy:.1}"));

    // Once the page holds still: after 2 s, almost nothing.
    ask("@still");
    std::thread::sleep(Duration::from_secs(2));
    *sent.lock().unwrap() = Sent::default();
    let cpu = CpuClock::start();
    std::thread::sleep(Duration::from_secs(5));
    let idle = cpu.percent();
    let idle_bytes = sent.lock().unwrap().bytes as f64 / 5.0;
    drop(pipeline);
    report.push(format!("\"static_screen_cpu_percent\":{idle:.2}"));
    report.push(format!(
        "\"bytes_per_second\":{{\"scrolling\":{moving_bytes:.0},\"still\":{idle_bytes:.0}}}"
    ));

    // The codecs compared on the same pictures: a scroll captured at 30 fps, then the still page.
    ask("@scroll");
    let mut capture = screens.open(None).unwrap();
    let (mut pictures, mut capture_ms) = (Vec::new(), Vec::new());
    let started = Instant::now();
    while started.elapsed() < Duration::from_secs(4) {
        let at = Instant::now();
        capture.capture(&mut picture).unwrap();
        capture_ms.push(at.elapsed().as_secs_f64() * 1000.0);
        pictures.push(picture.clone());
        std::thread::sleep(Duration::from_millis(33).saturating_sub(at.elapsed()));
    }
    ask("@still");
    while capture.capture(&mut picture).unwrap() == Captured::Changed {
        std::thread::sleep(Duration::from_millis(100));
    }
    let scrolled = pictures.len();
    pictures.extend(std::iter::repeat_n(picture.clone(), 45));
    let mut codecs = Vec::new();
    for (name, config) in [
        ("vp8_screen", VpxConfig::screen(VideoCodec::Vp8, width, height, 30, KBPS)),
        ("vp9_screen", VpxConfig::screen(VideoCodec::Vp9, width, height, 30, KBPS)),
        ("vp8_camera_settings", VpxConfig::camera(width, height, 30, KBPS)),
    ] {
        codecs.push((name, compare(config, &pictures, scrolled)));
    }
    // The codec we send (VP8 in screen mode): one thread, so its fps is on one core.
    let chosen = &codecs[0].1;
    let (capture_p50, capture_p95) =
        (percentile(&mut capture_ms, 0.5), percentile(&mut capture_ms, 0.95));
    let fps_one_core = 1000.0 / (capture_p50 + chosen.encode_p50);
    report.push(format!(
        "\"capture_encode_1080p\":{{\"capture_convert_ms\":{{\"p50\":{capture_p50:.2},\"p95\":{capture_p95:.2}}},\"encode_ms\":{{\"p50\":{:.1},\"p95\":{:.1}}},\"fps_on_one_core\":{fps_one_core:.1}}}",
        chosen.encode_p50, chosen.encode_p95
    ));
    report.push(format!("\"text_ssim_at_2_5_mbps\":{:.4}", chosen.ssim_still));
    let codecs: Vec<String> =
        codecs.iter().map(|(name, c)| format!("\"{name}\":{}", c.json())).collect();
    report.push(format!("\"codecs\":{{{}}}", codecs.join(",")));
    println!("{{{}}}", report.join(","));
}

/// One codec's figures on the benchmark's pictures.
struct Compared {
    encode_p50: f64,
    encode_p95: f64,
    kbps: f64,
    ssim_moving: f64,
    ssim_still: f64,
}

impl Compared {
    fn json(&self) -> String {
        format!(
            "{{\"encode_ms_p50\":{:.1},\"encode_ms_p95\":{:.1},\"kbps_scrolling\":{:.0},\"ssim_scrolling\":{:.4},\"ssim_still\":{:.4}}}",
            self.encode_p50, self.encode_p95, self.kbps, self.ssim_moving, self.ssim_still
        )
    }
}

/// Encodes `pictures` (the first `scrolled` of them moving) and decodes them as a viewer would.
fn compare(config: VpxConfig, pictures: &[I420Frame], scrolled: usize) -> Compared {
    let mut encoder = VpxEncoder::new(config).unwrap();
    let mut decoder = VpxDecoder::new(config.codec).unwrap();
    let (mut encode_ms, mut bytes, mut moving_ssim) = (Vec::new(), 0, Vec::new());
    let mut shown = None;
    for (n, source) in pictures.iter().enumerate() {
        let at = Instant::now();
        let frames = encoder.encode(source, n == 0).unwrap();
        encode_ms.push(at.elapsed().as_secs_f64() * 1000.0);
        for frame in frames {
            bytes += if n < scrolled { frame.data.len() } else { 0 };
            shown = decoder.decode(&frame.data).unwrap().or(shown);
        }
        // What the viewer sees while it moves: every fifth picture, to keep the run short.
        if n < scrolled && n % 5 == 0 {
            moving_ssim.push(shown.as_ref().map_or(0.0, |s| ssim(s, source)));
        }
    }
    let mut moving_ms = encode_ms[..scrolled].to_vec();
    Compared {
        encode_p50: percentile(&mut moving_ms, 0.5),
        encode_p95: percentile(&mut moving_ms, 0.95),
        kbps: bytes as f64 * 8.0 / (scrolled as f64 / 30.0) / 1000.0,
        ssim_moving: moving_ssim.iter().sum::<f64>() / moving_ssim.len() as f64,
        ssim_still: ssim(shown.as_ref().unwrap(), pictures.last().unwrap()),
    }
}

/// Asks the driver to change the page, and waits until it has.
fn ask(what: &str) {
    println!("{what}");
    let mut line = String::new();
    std::io::stdin().lock().read_line(&mut line).unwrap();
    assert_eq!(line.trim(), "ok", "the driver answered {line:?} to {what}");
}

/// Counts the frames a pipeline sends.
struct Count(Arc<Mutex<Sent>>);

#[derive(Default)]
struct Sent {
    frames: usize,
    bytes: usize,
}

impl FrameSink for Count {
    fn wanted(&self) -> bool {
        true
    }
    fn deliver(&mut self, frame: EncodedFrame) -> bool {
        let mut sent = self.0.lock().unwrap();
        sent.frames += 1;
        sent.bytes += frame.data.len();
        true
    }
    fn failed(&mut self, error: MediaError) {
        panic!("the pipeline failed: {error}");
    }
}

/// This process's CPU time (user + system, from /proc) against the wall clock.
struct CpuClock {
    cpu: f64,
    wall: Instant,
}

impl CpuClock {
    fn start() -> Self {
        Self { cpu: cpu_seconds(), wall: Instant::now() }
    }

    /// Percent of one core used since the start.
    fn percent(&self) -> f64 {
        (cpu_seconds() - self.cpu) / self.wall.elapsed().as_secs_f64() * 100.0
    }
}

fn cpu_seconds() -> f64 {
    let stat = std::fs::read_to_string("/proc/self/stat").unwrap();
    // Fields after the command name (which is in parentheses): utime and stime are 14 and 15.
    let fields: Vec<&str> = stat.rsplit_once(')').unwrap().1.split_whitespace().collect();
    let ticks: f64 = fields[11].parse::<f64>().unwrap() + fields[12].parse::<f64>().unwrap();
    ticks / 100.0
}

fn median_ms(mut f: impl FnMut()) -> f64 {
    let mut ms: Vec<f64> = (0..30)
        .map(|_| {
            let at = Instant::now();
            f();
            at.elapsed().as_secs_f64() * 1000.0
        })
        .collect();
    percentile(&mut ms, 0.5)
}

fn percentile(samples: &mut [f64], p: f64) -> f64 {
    samples.sort_by(f64::total_cmp);
    samples[((samples.len() - 1) as f64 * p).round() as usize]
}

/// Mean SSIM of the luma of two pictures, over 8×8 windows every 4 pixels (as libvpx measures
/// it; the browser test's `ssim` in tests/browser/harness.mjs is the same).
fn ssim(a: &I420Frame, b: &I420Frame) -> f64 {
    let (w, h) = (a.width(), a.height());
    let (c1, c2) = ((0.01f64 * 255.0).powi(2), (0.03f64 * 255.0).powi(2));
    let (mut sum, mut n) = (0.0, 0u32);
    for y in (0..=h - 8).step_by(4) {
        for x in (0..=w - 8).step_by(4) {
            let (mut sa, mut sb, mut saa, mut sbb, mut sab) = (0.0, 0.0, 0.0, 0.0, 0.0);
            for dy in 0..8 {
                for dx in 0..8 {
                    let p = f64::from(a.luma(x + dx, y + dy));
                    let q = f64::from(b.luma(x + dx, y + dy));
                    sa += p;
                    sb += q;
                    saa += p * p;
                    sbb += q * q;
                    sab += p * q;
                }
            }
            let (ma, mb) = (sa / 64.0, sb / 64.0);
            let (va, vb) = (saa / 64.0 - ma * ma, sbb / 64.0 - mb * mb);
            let cov = sab / 64.0 - ma * mb;
            sum += ((2.0 * ma * mb + c1) * (2.0 * cov + c2))
                / ((ma * ma + mb * mb + c1) * (va + vb + c2));
            n += 1;
        }
    }
    sum / f64::from(n)
}
