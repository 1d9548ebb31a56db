//! What travels over one connection besides media: the negotiated `sync` and `ctl` channels,
//! our offers, and the `hello` with its `fp_mac` over the two DTLS fingerprints.

use std::sync::Arc;
use std::time::Duration;

use confab_proto::datachannel::{fp_mac, verify_fp_mac};
use confab_proto::{CtlMessage, PeerId, SignalData};
use rtc::peer_connection::configuration::RTCOfferOptions;
use tokio::sync::mpsc;
use webrtc::data_channel::{DataChannel, DataChannelEvent, RTCDataChannelInit};
use webrtc::peer_connection::PeerConnection;

use super::{PeerError, PeerEvent, PeerSetup};

/// How long leaving waits for the peer to acknowledge our `bye`.
const BYE_TIMEOUT: Duration = Duration::from_secs(1);

#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub(super) enum Channel {
    Sync,
    Ctl,
}

/// Between signaling's types and the stack's, which have the same JSON shape; `what` names it
/// in the error.
pub(super) fn convert<T: serde::Serialize, U: serde::de::DeserializeOwned>(
    what: &'static str,
    value: &T,
) -> Result<U, PeerError> {
    serde_json::to_value(value)
        .and_then(serde_json::from_value)
        .map_err(|e| PeerError::Malformed { what, detail: e.to_string() })
}

/// The `a=fingerprint:` value of an SDP (`sha-256 AB:CD:…`).
pub(crate) fn fingerprint(sdp: &str) -> Option<String> {
    sdp.lines().find_map(|l| l.trim().strip_prefix("a=fingerprint:")).map(str::to_owned)
}

/// The first `a=mid:` of an SDP; our candidates carry it, as browsers expect.
pub(super) fn first_mid(sdp: &str) -> Option<String> {
    sdp.lines().find_map(|l| l.trim().strip_prefix("a=mid:")).map(str::to_owned)
}

pub(super) async fn open_channel(
    pc: &Arc<dyn PeerConnection>,
    label: &str,
    id: u16,
    which: Channel,
    events: mpsc::UnboundedSender<(Channel, DataChannelEvent)>,
) -> Result<Arc<dyn DataChannel>, PeerError> {
    let init = RTCDataChannelInit {
        ordered: true,
        max_packet_life_time: None,
        max_retransmits: None,
        protocol: String::new(),
        negotiated: Some(id),
    };
    let channel = pc
        .create_data_channel(label, Some(init))
        .await
        .map_err(PeerError::stack("open a data channel"))?;
    let poller = channel.clone();
    tokio::spawn(async move {
        while let Some(event) = poller.poll().await {
            let closed = matches!(event, DataChannelEvent::OnClose);
            if events.send((which, event)).is_err() || closed {
                break;
            }
        }
    });
    Ok(channel)
}

/// Makes, sets and sends an offer (with fresh ICE credentials to restart ICE); returns its first
/// mid.
pub(super) async fn send_offer(
    pc: &Arc<dyn PeerConnection>,
    emit: &impl Fn(PeerEvent) -> bool,
    restart_ice: bool,
) -> Result<Option<String>, PeerError> {
    let options = restart_ice.then_some(RTCOfferOptions { ice_restart: true });
    let offer = pc.create_offer(options).await.map_err(PeerError::stack("create an offer"))?;
    pc.set_local_description(offer.clone()).await.map_err(PeerError::stack("set our offer"))?;
    emit(PeerEvent::Signal(SignalData::Sdp { sdp: convert("description", &offer)? }));
    Ok(first_mid(&offer.sdp))
}

/// Our hello: who we are, and the key's MAC over our fingerprint and the peer's.
pub(super) async fn hello(
    setup: &PeerSetup,
    me: &PeerId,
    pc: &Arc<dyn PeerConnection>,
) -> Result<CtlMessage, PeerError> {
    let (own, theirs) = fingerprints(pc).await.ok_or(PeerError::NoFingerprints)?;
    Ok(CtlMessage::Hello {
        peer_id: me.clone(),
        name: setup.name.clone(),
        client: setup.client,
        app_version: setup.app_version.clone(),
        want_snapshot: setup.want_snapshot,
        fp_mac: fp_mac(&setup.key, &own, &theirs),
        instance: Some(setup.instance.clone()),
    })
}

pub(super) async fn hello_verifies(
    setup: &PeerSetup,
    pc: &Arc<dyn PeerConnection>,
    mac: &str,
) -> bool {
    match fingerprints(pc).await {
        Some((own, theirs)) => verify_fp_mac(&setup.key, mac, &theirs, &own),
        None => false,
    }
}

/// Sends `bye` and waits until SCTP has it acknowledged (or a moment passes), so that closing
/// right after does not lose it and the peer hears we left rather than that we failed.
pub(super) async fn say_bye(ctl: &Arc<dyn DataChannel>) {
    if ctl.send_text(&CtlMessage::Bye {}.encode()).await.is_err() {
        return;
    }
    let acknowledged = async {
        while ctl.outstanding_bytes().await.is_ok_and(|n| n > 0) {
            tokio::time::sleep(Duration::from_millis(5)).await;
        }
    };
    let _ = tokio::time::timeout(BYE_TIMEOUT, acknowledged).await;
}

/// (our fingerprint, the peer's), as this side's connection sees them.
async fn fingerprints(pc: &Arc<dyn PeerConnection>) -> Option<(String, String)> {
    let local = pc.local_description().await?;
    let remote = pc.remote_description().await?;
    Some((fingerprint(&local.sdp)?, fingerprint(&remote.sdp)?))
}
