//! Screens in a Wayland session, through the xdg-desktop-portal ScreenCast: the system's own
//! dialog asks which screen to share, and PipeWire streams it to us.
//!
//! The portal names no screen before a person has chosen one, so [`PortalScreens`] lists one
//! entry, the dialog, with no thumbnail. The D-Bus handshake runs on the caller's thread (the
//! engine opens sources on a blocking thread, as the dialog waits for a person). The PipeWire
//! stream runs its loop on a thread of its own, keeping only the newest picture; a capture
//! takes it if it is new, and compares it with the last as the X11 capture does, so a still
//! screen costs no conversion and no encoding.

use std::os::fd::OwnedFd;
use std::sync::{Arc, Condvar, Mutex};
use std::time::{Duration, Instant};

use ashpd::desktop::screencast::{
    CursorMode, Screencast, SelectSourcesOptions, SourceType, StartCastOptions,
};
use ashpd::desktop::{PersistMode, ResponseError, Session};
use pipewire as pw;
use pw::spa;
use spa::param::video::{VideoFormat, VideoInfoRaw};
use spa::pod::{Pod, Value, object, property, serialize::PodSerializer};

use super::*;
use crate::convert::bgra_to_i420;

/// The id of the one entry the portal offers: its own dialog.
const DIALOG: &str = "portal";
/// How long the first picture may take to arrive once a screen is chosen.
const FIRST_PICTURE: Duration = Duration::from_secs(10);

pub(super) struct PortalScreens;

impl ScreenSource for PortalScreens {
    fn displays(&self) -> Result<Vec<Display>, MediaError> {
        Ok(vec![Display {
            id: DIALOG.into(),
            name: "Choose in the system's dialog".into(),
            width: 0,
            height: 0,
            primary: true,
            chosen_by_system: true,
        }])
    }

    fn thumbnail(&self, _id: &str) -> Result<Thumbnail, MediaError> {
        Err(MediaError::Unavailable("the system's screen-sharing dialog shows the screens".into()))
    }

    fn open(&self, id: Option<&str>) -> Result<Box<dyn VideoSource>, MediaError> {
        if let Some(id) = id.filter(|id| *id != DIALOG) {
            return Err(MediaError::BadSetting(format!(
                "in a Wayland session the system's dialog chooses the screen to share, so \
                 display {id:?} cannot be named; leave it out"
            )));
        }
        let (session, node, remote) = ashpd::zbus::block_on(choose_screen()).map_err(refused)?;
        Ok(Box::new(PortalCapture::start(node, remote, Some(session))?))
    }
}

/// Captures the PipeWire video node `node`, reached through the PipeWire connection `remote`:
/// what the portal hands over once a screen is chosen, and what a test can make without one.
pub fn pipewire_video(node: u32, remote: OwnedFd) -> Result<Box<dyn VideoSource>, MediaError> {
    Ok(Box::new(PortalCapture::start(node, remote, None)?))
}

/// What the portal's refusals mean to the person sharing.
fn refused(error: ashpd::Error) -> MediaError {
    MediaError::Unavailable(match error {
        ashpd::Error::Response(ResponseError::Cancelled) => {
            "screen sharing was cancelled in the system's dialog".into()
        }
        // A backend that cannot capture this desktop ends the request so, as does a dialog
        // closed without a choice.
        ashpd::Error::Response(ResponseError::Other) => "the desktop portal did not start \
            sharing a screen: its dialog was closed, or it cannot capture this desktop"
            .into(),
        ashpd::Error::Portal(refusal) if !nobody_answered(&refusal) => {
            format!("the desktop portal refused to share a screen: {refusal}")
        }
        other => format!(
            "sharing a screen in a Wayland session needs the desktop portal (xdg-desktop-portal, \
             with the one for this desktop: -gnome, -kde or -wlr), and none answered: {other}"
        ),
    })
}

/// Whether the session bus said that no portal is there to answer.
fn nobody_answered(refusal: &ashpd::PortalError) -> bool {
    matches!(refusal, ashpd::PortalError::ZBus(ashpd::zbus::Error::MethodError(name, _, _))
        if name.as_str() == "org.freedesktop.DBus.Error.ServiceUnknown")
}

/// The newest picture PipeWire delivered, shared between its loop and the capture.
#[derive(Default)]
struct Newest {
    /// BGRx or BGRA rows of `stride` bytes.
    bgra: Vec<u8>,
    stride: usize,
    width: u32,
    height: u32,
    /// Not taken by a capture yet.
    new: bool,
    /// Why the stream stopped, once it has.
    ended: Option<String>,
}

type Shared = Arc<(Mutex<Newest>, Condvar)>;

/// One screen chosen in the portal's dialog (or any PipeWire video node), streamed through
/// PipeWire.
struct PortalCapture {
    size: (u32, u32),
    /// The size the portal streams, and the whole factor it is scaled down by to fit.
    source: (u32, u32),
    scale: u32,
    newest: Shared,
    /// The last picture converted, to skip one that did not change.
    last: Vec<u8>,
    stop: pw::channel::Sender<()>,
    stream_thread: Option<std::thread::JoinHandle<()>>,
    /// The portal's, held for as long as the share lasts: closing it ends the cast.
    session: Option<Session<Screencast>>,
}

impl PortalCapture {
    fn start(
        node: u32,
        remote: OwnedFd,
        session: Option<Session<Screencast>>,
    ) -> Result<Self, MediaError> {
        let newest: Shared = Arc::default();
        let (stop, stopped) = pw::channel::channel();
        let shared = newest.clone();
        let stream_thread =
            std::thread::Builder::new().name("confab-portal".into()).spawn(move || {
                if let Err(e) = stream(node, remote, &shared, stopped) {
                    end(&shared, e.to_string());
                }
            })?;
        let mut capture = Self {
            size: (0, 0),
            source: (0, 0),
            scale: 1,
            newest,
            last: Vec::new(),
            stop,
            stream_thread: Some(stream_thread),
            session,
        };
        // The size is known from the first picture: wait for it.
        let (lock, arrived) = &*capture.newest;
        let deadline = Instant::now() + FIRST_PICTURE;
        let mut newest = lock.lock().unwrap_or_else(|p| p.into_inner());
        while newest.width == 0 && newest.ended.is_none() {
            let left = deadline.saturating_duration_since(Instant::now());
            if left.is_zero() {
                return Err(MediaError::SourceEnded(
                    "the chosen screen sent no picture within 10 s".into(),
                ));
            }
            newest = arrived.wait_timeout(newest, left).unwrap_or_else(|p| p.into_inner()).0;
        }
        if let Some(why) = &newest.ended {
            return Err(MediaError::SourceEnded(why.clone()));
        }
        let (width, height) = (newest.width, newest.height);
        drop(newest);
        let (sent_w, sent_h, scale) = scaled_size(width, height);
        capture.size = (sent_w, sent_h);
        capture.source = (width, height);
        capture.scale = scale;
        Ok(capture)
    }
}

/// The portal's handshake: a session, the person's choice of one screen, and the PipeWire
/// remote that streams it.
async fn choose_screen() -> Result<(Session<Screencast>, u32, OwnedFd), ashpd::Error> {
    let portal = Screencast::new().await?;
    let session = portal.create_session(Default::default()).await?;
    // The pointer drawn into the picture where the desktop can, as viewers expect to see it.
    let cursor = match portal.available_cursor_modes().await {
        Ok(modes) if modes.contains(CursorMode::Embedded) => CursorMode::Embedded,
        _ => CursorMode::Hidden,
    };
    portal
        .select_sources(
            &session,
            SelectSourcesOptions::default()
                .set_cursor_mode(cursor)
                .set_sources(ashpd::enumflags2::BitFlags::from(SourceType::Monitor))
                .set_multiple(false)
                .set_persist_mode(PersistMode::DoNot),
        )
        .await?;
    let streams = portal.start(&session, None, StartCastOptions::default()).await?.response()?;
    let Some(chosen) = streams.streams().first() else {
        return Err(ashpd::Error::Response(ResponseError::Other));
    };
    let node = chosen.pipe_wire_node_id();
    let remote = portal.open_pipe_wire_remote(&session, Default::default()).await?;
    Ok((session, node, remote))
}

fn end(shared: &Shared, why: String) {
    let (lock, arrived) = &**shared;
    let mut newest = lock.lock().unwrap_or_else(|p| p.into_inner());
    newest.ended.get_or_insert(why);
    arrived.notify_all();
}

/// Runs the PipeWire stream of node `node` until told to stop or the stream ends.
fn stream(
    node: u32,
    remote: OwnedFd,
    shared: &Shared,
    stopped: pw::channel::Receiver<()>,
) -> Result<(), pw::Error> {
    pw::init();
    let main_loop = pw::main_loop::MainLoopRc::new(None)?;
    let context = pw::context::ContextBox::new(main_loop.loop_(), None)?;
    let core = context.connect_fd(remote, None)?;
    let stream = pw::stream::StreamBox::new(
        &core,
        "confab-screen",
        pw::properties::properties! {
            *pw::keys::MEDIA_TYPE => "Video",
            *pw::keys::MEDIA_CATEGORY => "Capture",
            *pw::keys::MEDIA_ROLE => "Screen",
        },
    )?;
    let on_frame = shared.clone();
    let on_state = shared.clone();
    let _listener = stream
        .add_local_listener_with_user_data(VideoInfoRaw::default())
        .state_changed(move |_, _, _, state| match state {
            pw::stream::StreamState::Error(why) => end(&on_state, format!("PipeWire: {why}")),
            pw::stream::StreamState::Unconnected => {
                end(&on_state, "the system stopped the screen share".into())
            }
            _ => {}
        })
        .param_changed(|_, format, id, param| {
            if let Some(param) = param.filter(|_| id == spa::param::ParamType::Format.as_raw()) {
                // A format we did not offer leaves the size at zero, and no picture is taken.
                let _ = format.parse(param);
            }
        })
        .process(move |stream, format| {
            if let Some(mut buffer) = stream.dequeue_buffer() {
                keep_newest(&mut buffer, format, &on_frame);
            }
        })
        .register()?;
    let offer = offered_formats();
    let mut params = [Pod::from_bytes(&offer).expect("a pod we serialized ourselves")];
    stream.connect(
        spa::utils::Direction::Input,
        Some(node),
        pw::stream::StreamFlags::AUTOCONNECT | pw::stream::StreamFlags::MAP_BUFFERS,
        &mut params,
    )?;
    let quit = main_loop.clone();
    let _stopping = stopped.attach(main_loop.loop_(), move |()| quit.quit());
    main_loop.run();
    Ok(())
}

/// Copies one buffer's picture as the newest, if it holds one in a format we convert.
fn keep_newest(buffer: &mut pw::buffer::Buffer<'_>, format: &VideoInfoRaw, shared: &Shared) {
    if !matches!(format.format(), VideoFormat::BGRx | VideoFormat::BGRA) {
        return;
    }
    let size = format.size();
    let Some(data) = buffer.datas_mut().first_mut() else { return };
    let chunk = data.chunk();
    let (offset, length) = (chunk.offset() as usize, chunk.size() as usize);
    // Some producers leave the stride at 0 for rows packed end to end.
    let stride = match chunk.stride().unsigned_abs() as usize {
        0 => size.width as usize * 4,
        stride => stride,
    };
    let corrupted = chunk.flags().contains(spa::buffer::ChunkFlags::CORRUPTED);
    let rows = size.height as usize;
    // An empty chunk is a frame with no new picture (the desktop sends those while nothing moves).
    if corrupted || length == 0 || stride < size.width as usize * 4 || length < stride * rows {
        return;
    }
    let Some(bytes) = data.data().and_then(|all| all.get(offset..offset + stride * rows)) else {
        return;
    };
    let (lock, arrived) = &**shared;
    let mut newest = lock.lock().unwrap_or_else(|p| p.into_inner());
    newest.bgra.clear();
    newest.bgra.extend_from_slice(bytes);
    (newest.stride, newest.width, newest.height) = (stride, size.width, size.height);
    newest.new = true;
    arrived.notify_all();
}

/// What we take: BGRx or BGRA (what screens are made of, converted without a swizzle), any
/// size, any rate up to ours.
fn offered_formats() -> Vec<u8> {
    use spa::param::format::{FormatProperties, MediaSubtype, MediaType};
    use spa::utils::{Fraction, Rectangle, SpaTypes};
    let formats = object!(
        SpaTypes::ObjectParamFormat,
        spa::param::ParamType::EnumFormat,
        property!(FormatProperties::MediaType, Id, MediaType::Video),
        property!(FormatProperties::MediaSubtype, Id, MediaSubtype::Raw),
        property!(
            FormatProperties::VideoFormat,
            Choice,
            Enum,
            Id,
            VideoFormat::BGRx,
            VideoFormat::BGRx,
            VideoFormat::BGRA
        ),
        property!(
            FormatProperties::VideoSize,
            Choice,
            Range,
            Rectangle,
            Rectangle { width: 1920, height: 1080 },
            Rectangle { width: 2, height: 2 },
            Rectangle { width: 8192, height: 8192 }
        ),
        property!(
            FormatProperties::VideoFramerate,
            Choice,
            Range,
            Fraction,
            Fraction { num: SCREEN_FPS, denom: 1 },
            Fraction { num: 0, denom: 1 },
            Fraction { num: SCREEN_FPS, denom: 1 }
        ),
    );
    PodSerializer::serialize(std::io::Cursor::new(Vec::new()), &Value::Object(formats))
        .expect("a format pod serializes into memory")
        .0
        .into_inner()
}

impl VideoSource for PortalCapture {
    fn size(&self) -> (u32, u32) {
        self.size
    }

    fn frame_rate(&self) -> u32 {
        SCREEN_FPS
    }

    fn capture(&mut self, frame: &mut I420Frame) -> Result<Captured, MediaError> {
        let (lock, _) = &*self.newest;
        let mut newest = lock.lock().unwrap_or_else(|p| p.into_inner());
        if let Some(why) = &newest.ended {
            return Err(MediaError::SourceEnded(why.clone()));
        }
        if !newest.new {
            return Ok(Captured::Unchanged);
        }
        newest.new = false;
        if (newest.width, newest.height) != self.source {
            return Err(MediaError::SourceEnded(format!(
                "the shared screen changed size from {}×{} to {}×{}; share it again",
                self.source.0, self.source.1, newest.width, newest.height
            )));
        }
        if newest.bgra == self.last {
            return Ok(Captured::Unchanged);
        }
        std::mem::swap(&mut newest.bgra, &mut self.last);
        let stride = newest.stride;
        drop(newest);
        let (width, height) = self.source;
        bgra_to_i420(&self.last, stride, width, height, self.scale, frame)?;
        Ok(Captured::Changed)
    }
}

impl Drop for PortalCapture {
    fn drop(&mut self) {
        let _ = self.stop.send(());
        if let Some(thread) = self.stream_thread.take() {
            let _ = thread.join();
        }
        if let Some(session) = &self.session {
            let _ = ashpd::zbus::block_on(session.close());
        }
    }
}
