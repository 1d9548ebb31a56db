//! Recording: the synthetic camera and tone, encoded for real, muxed into WebM as they are.

use std::time::Duration;

use confab_media::audio::{FRAME_DURATION, FRAME_SAMPLES};
use confab_media::{
    AudioSource, I420Frame, MediaError, OpusEncoder, SineTone, SyntheticCamera, VideoSource,
    VpxConfig, VpxEncoder, WebmRecorder, vp8_keyframe_size,
};

#[test]
fn a_recording_holds_vp8_and_opus_as_webm() {
    let (width, height, fps) = (640, 360, 30);
    let mut camera = SyntheticCamera::new(width, height, fps).unwrap();
    let mut video = VpxEncoder::new(VpxConfig::camera(width, height, fps, 600)).unwrap();
    let mut tone = SineTone::new(440).unwrap();
    let mut audio = OpusEncoder::new(32).unwrap();
    let dir = tempfile::tempdir().unwrap();
    let path = dir.path().join("meeting.webm");
    let mut recorder = WebmRecorder::create(&path, width, height).unwrap();
    let mut picture = I420Frame::black(width, height).unwrap();
    let mut samples = vec![0i16; FRAME_SAMPLES];
    let frame_interval = Duration::from_secs(1) / fps;
    let mut sizes = vec![];
    let mut encoded_bytes = 0;
    // Two seconds, the two tracks interleaved by time as they would arrive.
    let (mut next_video, mut next_audio) = (Duration::ZERO, Duration::ZERO);
    while next_video < Duration::from_secs(2) || next_audio < Duration::from_secs(2) {
        if next_video <= next_audio {
            camera.capture(&mut picture).unwrap();
            for frame in video.encode(&picture, false).unwrap() {
                sizes.push(vp8_keyframe_size(&frame.data));
                encoded_bytes += frame.data.len();
                recorder.video(&frame.data, next_video, frame.keyframe).unwrap();
            }
            next_video += frame_interval;
        } else {
            tone.capture(&mut samples).unwrap();
            let packet = audio.encode(&samples).unwrap();
            encoded_bytes += packet.len();
            recorder.audio(&packet, next_audio).unwrap();
            next_audio += FRAME_DURATION;
        }
    }
    recorder.finish().unwrap();

    assert_eq!(sizes[0], Some((width, height)), "the first frame is a keyframe of its size");
    assert!(sizes[1..].iter().all(Option::is_none), "the others are interframes");
    let file = std::fs::read(&path).unwrap();
    assert_eq!(file[..4], [0x1a, 0x45, 0xdf, 0xa3], "an EBML file");
    let holds = |needle: &[u8]| file.windows(needle.len()).any(|w| w == needle);
    assert!(holds(b"webm") && holds(b"V_VP8") && holds(b"A_OPUS") && holds(b"OpusHead"));
    // Every frame is in the file as it was encoded, plus the container's few bytes each.
    assert!(
        file.len() >= encoded_bytes && file.len() < encoded_bytes + 64 * 1024,
        "{} bytes for {encoded_bytes} encoded",
        file.len()
    );
}

#[test]
fn sound_stamped_before_pictures_already_given_keeps_its_time() {
    let (width, height, fps) = (320, 180, 30);
    let mut camera = SyntheticCamera::new(width, height, fps).unwrap();
    let mut video = VpxEncoder::new(VpxConfig::camera(width, height, fps, 300)).unwrap();
    let mut audio = OpusEncoder::new(32).unwrap();
    let dir = tempfile::tempdir().unwrap();
    let path = dir.path().join("late-sound.webm");
    let mut recorder = WebmRecorder::create(&path, width, height).unwrap();
    let mut picture = I420Frame::black(width, height).unwrap();
    let silence = vec![0i16; FRAME_SAMPLES];
    // Sound is handed over 100 ms after its time (a jitter buffer's delay), pictures at once.
    for tick in 0..100u32 {
        let now = FRAME_DURATION * tick;
        if tick % 2 == 0 {
            camera.capture(&mut picture).unwrap();
            for frame in video.encode(&picture, false).unwrap() {
                recorder.video(&frame.data, now, frame.keyframe).unwrap();
            }
        }
        if let Some(sound_at) = now.checked_sub(Duration::from_millis(100)) {
            recorder.audio(&audio.encode(&silence).unwrap(), sound_at).unwrap();
        }
    }
    recorder.finish().unwrap();
    // ffprobe (Debian's ffmpeg) reads each sound packet at its own time: 20 ms apart from 0.
    let out = std::process::Command::new("ffprobe")
        .args(["-v", "error", "-select_streams", "a", "-show_entries", "packet=pts_time"])
        .args(["-of", "csv=p=0"])
        .arg(&path)
        .output()
        .expect("ffprobe");
    let times: Vec<f64> = String::from_utf8_lossy(&out.stdout)
        .lines()
        .filter_map(|l| l.trim().parse().ok())
        .collect();
    assert_eq!(times.len(), 95, "{times:?}");
    for (i, t) in times.iter().enumerate() {
        assert!((t - i as f64 * 0.02).abs() < 0.0015, "packet {i} at {t} s: {times:?}");
    }
}

#[test]
fn a_recording_that_cannot_be_written_is_an_error() {
    let dir = tempfile::tempdir().unwrap();
    let missing = dir.path().join("no/such/dir/meeting.webm");
    assert!(matches!(
        WebmRecorder::create(&missing, 640, 360),
        Err(MediaError::Recording { op: "create", .. })
    ));
    assert!(matches!(
        WebmRecorder::create(&dir.path().join("a.webm"), 0, 360),
        Err(MediaError::Recording { .. })
    ));
    assert_eq!(vp8_keyframe_size(b"not vp8"), None);
}
