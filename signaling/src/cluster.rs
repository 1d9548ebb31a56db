//! The cluster's I/O: rooms shared with other instances through Redis. It carries out the hub's
//! [`Command`]s and tells the hub what the cluster says ([`ClusterInput`]); every decision is the
//! hub's.
//!
//! ## In Redis (keys under `confab:`)
//! - `room:ROOM`: a hash of the room's seats, peer id → `INSTANCE {peer json}`. Taking and giving
//!   up a seat are Lua scripts, so `room_full` holds however joins race across instances, and the
//!   instances seated in the room are told in the same step.
//! - `alive:INSTANCE`: set every `expiry / 4` to expire after `expiry`. An instance without it is
//!   dead: its peers are announced as `peer_left`, and its seats are purged.
//! - `seats:INSTANCE`: the rooms where an instance has seats, to purge them once it is dead.
//! - `open:ROOM`: with access tokens, a meeting open to its link (made by a token holder, or in
//!   use), expiring [`OPEN_AFTER_USE`] after its last use; so a joiner without a token is let in
//!   on any instance.
//! - Channel `to:INSTANCE`: what is said to an instance, as JSON: a join or a leave (published
//!   by the scripts), or the relayed signals of one round trip, as one array (one `PUBLISH` per
//!   instance per round trip, however many signals). One connection publishes, in the order the
//!   hub decided, so an offer never passes its join.
//!
//! ## When Redis goes away
//! The hub is told [`ClusterInput::Down`] and keeps serving rooms whose members are all here. This
//! task reconnects with jittered backoff; when it is back, it seats every local member again
//! (a restarted Redis has lost them) before it beats again, so that a beating instance is one
//! whose seats are all in Redis. Dead instances are judged only once every live one has had a
//! full expiry to beat again, and then each peer of another instance is checked against its room:
//! a leave announced while we were gone was missed.

use std::sync::{Arc, LazyLock};
use std::time::Duration;

use confab_proto::{PeerId, PeerInfo, RoomId, SignalPayload};
use futures_util::StreamExt as _;
use redis::aio::{MultiplexedConnection, PubSubStream};
use redis::{AsyncConnectionConfig, Script};
use serde::{Deserialize, Serialize};
use tokio::sync::{mpsc, watch};
use tokio::time::Instant;
use tracing::{debug, info, warn};

use crate::access::OPEN_AFTER_USE;
use crate::hub::{ClusterInput, Command, InstanceId, Seat};
use crate::server::State;

/// Longest a Redis command may take before the connection is taken as lost.
const REDIS_TIMEOUT: Duration = Duration::from_secs(2);
/// Waits between reconnection attempts: from the first, doubling to the last, jittered.
const RECONNECT_FIRST: Duration = Duration::from_millis(100);
const RECONNECT_MAX: Duration = Duration::from_secs(1);
/// Commands run together in one round trip at most.
const BATCH: usize = 512;
/// Dead instances' seats are swept once every this many beats.
const SWEEP_EVERY: u32 = 20;

/// What one instance says to another on its channel. Externally tagged: a relayed signal's
/// JSON is kept as it came (a raw value), which an internally tagged enum cannot hold.
#[derive(Debug, PartialEq, Eq, Serialize, Deserialize)]
#[serde(rename_all = "snake_case")]
enum Said {
    Joined { room: RoomId, instance: String, peer: PeerInfo },
    Left { id: PeerId },
    Signal { from: PeerId, to: PeerId, data: SignalPayload },
}

/// Takes a seat unless the room is full (`ARGV[4]`, 0: no limit) or, for a joiner without an
/// access token (`ARGV[9]`), the meeting is neither in use nor open (`KEYS[2]`); purges seats of
/// dead instances on the way, tells the instances seated there, and keeps the meeting open for
/// `ARGV[10]` ms (0: no access tokens). Replies `full`, `closed`, or `seated` followed by the
/// seats taken before.
static SEAT: LazyLock<Script> = LazyLock::new(|| {
    Script::new(
        r"
local room, me, id, seat, max = KEYS[1], ARGV[1], ARGV[2], ARGV[3], tonumber(ARGV[4])
local all = redis.call('HGETALL', room)
local before, tell, alive = {}, {}, {}
for i = 1, #all, 2 do
  local peer, other = all[i], all[i + 1]
  local home = string.match(other, '^(%S+) ')
  if home and alive[home] == nil then
    alive[home] = home == me or redis.call('EXISTS', ARGV[6] .. home) == 1
  end
  if not (home and alive[home]) then
    redis.call('HDEL', room, peer)
  elseif peer ~= id then
    before[#before + 1] = other
    if home ~= me then tell[home] = true end
  end
end
if max > 0 and #before >= max then return {'full'} end
if ARGV[9] == '1' and #before == 0 and redis.call('EXISTS', KEYS[2]) == 0 then
  return {'closed'}
end
redis.call('HSET', room, id, seat)
if tonumber(ARGV[10]) > 0 then redis.call('SET', KEYS[2], 1, 'PX', ARGV[10]) end
redis.call('SADD', ARGV[8] .. me, room)
for home in pairs(tell) do redis.call('PUBLISH', ARGV[7] .. home, ARGV[5]) end
local reply = {'seated'}
for _, other in ipairs(before) do reply[#reply + 1] = other end
return reply
",
    )
});

/// Gives up a seat, tells every other instance seated in the room and those in `ARGV[7..]`, and,
/// if the seat was held (not a joiner gone before being seated), keeps the meeting open for
/// `ARGV[6]` ms from now (0: no access tokens).
static UNSEAT: LazyLock<Script> = LazyLock::new(|| {
    Script::new(
        r"
local room, me, id, said = KEYS[1], ARGV[1], ARGV[2], ARGV[3]
local had = redis.call('HDEL', room, id)
local told, mine = {[me] = true}, false
local function tell(home)
  if not told[home] then
    told[home] = true
    redis.call('PUBLISH', ARGV[4] .. home, said)
  end
end
for _, other in ipairs(redis.call('HVALS', room)) do
  local home = string.match(other, '^(%S+) ')
  if home == me then mine = true elseif home then tell(home) end
end
for i = 7, #ARGV do tell(ARGV[i]) end
if not mine then redis.call('SREM', ARGV[5] .. me, room) end
if had == 1 and tonumber(ARGV[6]) > 0 then redis.call('SET', KEYS[2], 1, 'PX', ARGV[6]) end
return 1
",
    )
});

/// Purges the seats of instance `ARGV[1]` if it is dead.
static PURGE: LazyLock<Script> = LazyLock::new(|| {
    Script::new(
        r"
if redis.call('EXISTS', ARGV[2]) == 1 then return 0 end
local prefix = ARGV[1] .. ' '
for _, room in ipairs(redis.call('SMEMBERS', KEYS[1])) do
  local all = redis.call('HGETALL', room)
  for i = 1, #all, 2 do
    if string.sub(all[i + 1], 1, #prefix) == prefix then redis.call('HDEL', room, all[i]) end
  end
end
redis.call('DEL', KEYS[1])
return 1
",
    )
});

fn room_key(room: &RoomId) -> String {
    format!("confab:room:{room}")
}
/// Set while a meeting is open to its link, with access tokens.
fn open_key(room: &RoomId) -> String {
    format!("confab:open:{room}")
}
const ALIVE: &str = "confab:alive:";
const CHANNEL: &str = "confab:to:";
const SEATS: &str = "confab:seats:";

/// Serves the cluster for `state.relay` until `stop` turns true: reconnects whenever Redis is
/// lost, and on the way out gives up this instance's seats and its beat.
pub async fn run(
    client: redis::Client,
    me: InstanceId,
    expiry: Duration,
    state: Arc<State>,
    mut commands: mpsc::Receiver<Command>,
    mut stop: watch::Receiver<bool>,
) {
    let mut wait = RECONNECT_FIRST;
    let mut told_down = false;
    // Whether tokens are asked for is read once, at start: it does not change.
    let open_ms = match state.relay.tokens_required() {
        true => u64::try_from(OPEN_AFTER_USE.as_millis()).unwrap_or(u64::MAX),
        false => 0,
    };
    loop {
        let connected = tokio::select! {
            c = connect(&client, &me) => c,
            _ = until_stopped(&mut stop) => return,
        };
        match connected {
            Ok((con, said)) => {
                wait = RECONNECT_FIRST;
                let mut link = Link { con, me: me.clone(), expiry, open_ms, state: state.clone() };
                state.relay.hear_cluster([ClusterInput::Up], &state.metrics);
                info!(instance = %me, "cluster up");
                match link.serve(said, &mut commands, &mut stop).await {
                    Ending::Stopped => {
                        link.goodbye(&mut commands).await;
                        return;
                    }
                    Ending::Lost(e) => {
                        state.relay.hear_cluster([ClusterInput::Down], &state.metrics);
                        warn!(error = %e, "lost Redis; serving rooms whose members are all here");
                        told_down = true;
                    }
                }
            }
            Err(e) if !told_down => {
                warn!(error = %e, "cannot reach Redis; retrying");
                told_down = true;
            }
            Err(e) => debug!(error = %e, "cannot reach Redis"),
        }
        // Down: a seat cannot be taken now, and the rest is replayed or moot when back.
        let pause = tokio::time::sleep(jittered(wait));
        tokio::pin!(pause);
        loop {
            tokio::select! {
                _ = &mut pause => break,
                _ = until_stopped(&mut stop) => return,
                Some(command) = commands.recv() => refuse_while_down(command, &state),
            }
        }
        wait = (wait * 2).min(RECONNECT_MAX);
    }
}

/// Resolves once `stop` turns true (holding no borrow of it across the wait's end).
async fn until_stopped(stop: &mut watch::Receiver<bool>) {
    drop(stop.wait_for(|&s| s).await);
}

fn refuse_while_down(command: Command, state: &State) {
    if let Command::Seat { peer, .. } = command {
        let input = ClusterInput::Unavailable { id: peer.id };
        state.relay.hear_cluster([input], &state.metrics);
    }
}

/// A wait in [50%, 100%] of `wait`, so that instances do not reconnect in step.
fn jittered(wait: Duration) -> Duration {
    wait.mul_f64(0.5 + rand::random::<f64>() / 2.0)
}

async fn connect(
    client: &redis::Client,
    me: &InstanceId,
) -> redis::RedisResult<(MultiplexedConnection, PubSubStream)> {
    let config = AsyncConnectionConfig::new()
        .set_connection_timeout(Some(REDIS_TIMEOUT))
        .set_response_timeout(Some(REDIS_TIMEOUT));
    let con = client.get_multiplexed_async_connection_with_config(&config).await?;
    let said = tokio::time::timeout(REDIS_TIMEOUT, async {
        let mut pubsub = client.get_async_pubsub().await?;
        pubsub.subscribe(format!("{CHANNEL}{me}")).await?;
        Ok::<_, redis::RedisError>(pubsub.into_on_message())
    })
    .await
    .map_err(|_| redis::RedisError::from(std::io::Error::from(std::io::ErrorKind::TimedOut)))??;
    Ok((con, said))
}

enum Ending {
    Lost(redis::RedisError),
    Stopped,
}

impl From<redis::RedisError> for Ending {
    fn from(e: redis::RedisError) -> Self {
        Self::Lost(e)
    }
}

/// One connection to Redis, while it lasts.
struct Link {
    con: MultiplexedConnection,
    me: InstanceId,
    expiry: Duration,
    /// How long a meeting stays open to its link after use, in ms; 0 without access tokens.
    open_ms: u64,
    state: Arc<State>,
}

impl Link {
    async fn serve(
        &mut self,
        mut said: PubSubStream,
        commands: &mut mpsc::Receiver<Command>,
        stop: &mut watch::Receiver<bool>,
    ) -> Ending {
        // The seats the hub asked back on `Up` are in Redis before this instance beats.
        if let Err(e) = self.run_queued(commands).await {
            return e;
        }
        let connected_at = Instant::now();
        let mut beat = tokio::time::interval(self.expiry / 4);
        beat.set_missed_tick_behavior(tokio::time::MissedTickBehavior::Delay);
        let mut beats = 0u32;
        let mut reconciled = false;
        let result: Result<(), Ending> = async {
            loop {
                tokio::select! {
                    _ = until_stopped(stop) => return Err(Ending::Stopped),
                    Some(command) = commands.recv() => {
                        let mut batch = vec![command];
                        while batch.len() < BATCH && let Ok(more) = commands.try_recv() {
                            batch.push(more);
                        }
                        self.run(batch).await?;
                    }
                    message = said.next() => {
                        let Some(message) = message else {
                            return Err(Ending::Lost(std::io::Error::from(std::io::ErrorKind::ConnectionReset).into()));
                        };
                        self.heard(message.get_payload_bytes());
                    }
                    _ = beat.tick() => {
                        self.beat().await?;
                        beats = beats.wrapping_add(1);
                        // Until every live instance has had a whole expiry to beat again, a
                        // missing beat proves nothing.
                        if connected_at.elapsed() >= self.expiry {
                            self.judge_instances().await?;
                            if !reconciled {
                                self.reconcile().await?;
                                reconciled = true;
                            }
                            if beats.is_multiple_of(SWEEP_EVERY) {
                                self.sweep().await?;
                            }
                        }
                    }
                }
            }
        }
        .await;
        match result {
            Err(ending) => ending,
            Ok(()) => Ending::Stopped,
        }
    }

    async fn run_queued(&mut self, commands: &mut mpsc::Receiver<Command>) -> Result<(), Ending> {
        let mut batch = Vec::new();
        while let Ok(command) = commands.try_recv() {
            batch.push(command);
        }
        self.run(batch).await?;
        self.beat().await?;
        Ok(())
    }

    /// Runs `commands` in order: seats one script each; the signals between them go out in one
    /// round trip, one message per instance holding all of its signals (a JSON array).
    async fn run(&mut self, commands: Vec<Command>) -> Result<(), Ending> {
        let mut relays: Vec<(InstanceId, Vec<Said>)> = Vec::new();
        for command in commands {
            if let Command::Relay { instance, from, to, data } = command {
                let said = Said::Signal { from, to, data };
                match relays.iter_mut().find(|(to, _)| *to == instance) {
                    Some((_, batch)) => batch.push(said),
                    None => relays.push((instance, vec![said])),
                }
                continue;
            }
            self.publish(&mut relays).await?;
            match command {
                Command::Seat { room, peer, needs_open } => {
                    self.seat(room, peer, self.state.config.max_peers, needs_open).await?;
                }
                Command::Reseat { room, peer } => self.seat(room, peer, 0, false).await?,
                Command::Open { room } => {
                    let mut open = redis::cmd("SET");
                    open.arg(open_key(&room)).arg(1).arg("PX").arg(self.open_ms);
                    open.query_async::<()>(&mut self.con).await?;
                }
                Command::Unseat { room, id, tell } => self.unseat(room, id, tell).await?,
                Command::Relay { .. } => {}
            }
        }
        self.publish(&mut relays).await
    }

    async fn publish(&mut self, relays: &mut Vec<(InstanceId, Vec<Said>)>) -> Result<(), Ending> {
        if relays.is_empty() {
            return Ok(());
        }
        let mut pipe = redis::pipe();
        for (instance, said) in relays.drain(..) {
            pipe.cmd("PUBLISH").arg(format!("{CHANNEL}{instance}")).arg(encode(&said)).ignore();
        }
        pipe.query_async::<()>(&mut self.con).await?;
        Ok(())
    }

    async fn seat(
        &mut self,
        room: RoomId,
        peer: PeerInfo,
        max: usize,
        needs_open: bool,
    ) -> Result<(), Ending> {
        let id = peer.id.clone();
        let entry = format!("{} {}", self.me, encode(&peer));
        let said =
            encode(&Said::Joined { room: room.clone(), instance: self.me.to_string(), peer });
        let reply: Vec<String> = SEAT
            .key(room_key(&room))
            .key(open_key(&room))
            .arg(self.me.as_str())
            .arg(id.as_str())
            .arg(entry)
            .arg(max)
            .arg(said)
            .arg(ALIVE)
            .arg(CHANNEL)
            .arg(SEATS)
            .arg(if needs_open { "1" } else { "0" })
            .arg(self.open_ms)
            .invoke_async(&mut self.con)
            .await?;
        let input = match reply.split_first() {
            Some((status, before)) if status == "seated" => {
                let before = before.iter().filter_map(|entry| parse_seat(entry)).collect();
                if max == 0 {
                    // Seated again: the hub already welcomed it; others seated meanwhile
                    // announced themselves, or will when they are seated again.
                    return Ok(());
                }
                ClusterInput::Seated { id, room, before }
            }
            Some((status, _)) if status == "closed" => ClusterInput::Closed { id },
            _ => ClusterInput::Full { id },
        };
        self.state.relay.hear_cluster([input], &self.state.metrics);
        Ok(())
    }

    async fn unseat(
        &mut self,
        room: RoomId,
        id: PeerId,
        tell: Vec<InstanceId>,
    ) -> Result<(), Ending> {
        let said = encode(&Said::Left { id: id.clone() });
        let mut script = UNSEAT.key(room_key(&room));
        script.key(open_key(&room));
        script.arg(self.me.as_str()).arg(id.as_str()).arg(said).arg(CHANNEL).arg(SEATS);
        script.arg(self.open_ms);
        for instance in &tell {
            script.arg(instance.as_str());
        }
        script.invoke_async::<i64>(&mut self.con).await?;
        Ok(())
    }

    fn heard(&self, payload: &[u8]) {
        let said = match read_said(payload) {
            Ok(said) => said,
            Err(e) => {
                warn!(error = %e, "ignoring a malformed message from another instance");
                return;
            }
        };
        let inputs = said.into_iter().filter_map(|said| match said {
            Said::Joined { room, instance, peer } => {
                let instance = instance.parse().ok()?;
                Some(ClusterInput::Joined { room, seat: Seat { instance, peer } })
            }
            Said::Left { id } => Some(ClusterInput::Left { id }),
            Said::Signal { from, to, data } => Some(ClusterInput::Signal { from, to, data }),
        });
        self.state.relay.hear_cluster(inputs, &self.state.metrics);
    }

    async fn beat(&mut self) -> Result<(), Ending> {
        let expiry = u64::try_from(self.expiry.as_millis()).unwrap_or(u64::MAX);
        redis::cmd("SET")
            .arg(format!("{ALIVE}{}", self.me))
            .arg(1)
            .arg("PX")
            .arg(expiry)
            .query_async::<()>(&mut self.con)
            .await?;
        Ok(())
    }

    /// Announces the peers of instances that stopped beating as gone.
    async fn judge_instances(&mut self) -> Result<(), Ending> {
        let instances = self.state.relay.remote_instances();
        if instances.is_empty() {
            return Ok(());
        }
        let mut pipe = redis::pipe();
        for instance in &instances {
            pipe.cmd("EXISTS").arg(format!("{ALIVE}{instance}"));
        }
        let alive: Vec<bool> = pipe.query_async(&mut self.con).await?;
        for (instance, alive) in instances.into_iter().zip(alive) {
            if !alive {
                info!(%instance, "an instance stopped beating; its peers are gone");
                let input = ClusterInput::InstanceGone { instance };
                self.state.relay.hear_cluster([input], &self.state.metrics);
            }
        }
        Ok(())
    }

    /// Checks each peer of another instance against its room, once after connecting: a leave
    /// announced while this instance was not listening was missed.
    async fn reconcile(&mut self) -> Result<(), Ending> {
        let members = self.state.relay.remote_members();
        if members.is_empty() {
            return Ok(());
        }
        let mut pipe = redis::pipe();
        for (room, id) in &members {
            pipe.cmd("HEXISTS").arg(room_key(room)).arg(id.as_str());
        }
        let seated: Vec<bool> = pipe.query_async(&mut self.con).await?;
        for ((_, id), seated) in members.into_iter().zip(seated) {
            if !seated {
                self.state.relay.hear_cluster([ClusterInput::Left { id }], &self.state.metrics);
            }
        }
        Ok(())
    }

    /// Purges the seats of every dead instance, including ones nobody here knew of.
    async fn sweep(&mut self) -> Result<(), Ending> {
        let mut cursor = 0u64;
        loop {
            let (next, keys): (u64, Vec<String>) = redis::cmd("SCAN")
                .arg(cursor)
                .arg("MATCH")
                .arg(format!("{SEATS}*"))
                .arg("COUNT")
                .arg(1000)
                .query_async(&mut self.con)
                .await?;
            for key in keys {
                let Some(instance) = key.strip_prefix(SEATS) else { continue };
                PURGE
                    .key(&key)
                    .arg(instance)
                    .arg(format!("{ALIVE}{instance}"))
                    .invoke_async::<i64>(&mut self.con)
                    .await?;
            }
            if next == 0 {
                return Ok(());
            }
            cursor = next;
        }
    }

    /// Shutting down: the seats given up (the connections' leaves are queued by now) and the
    /// beat stopped, so that other instances hear of it at once rather than after the expiry.
    async fn goodbye(&mut self, commands: &mut mpsc::Receiver<Command>) {
        let bye = async {
            let mut batch = Vec::new();
            while let Ok(command) = commands.try_recv() {
                batch.push(command);
            }
            self.run(batch).await?;
            redis::cmd("DEL")
                .arg(format!("{ALIVE}{}", self.me))
                .query_async::<()>(&mut self.con)
                .await?;
            Ok::<(), Ending>(())
        };
        if tokio::time::timeout(REDIS_TIMEOUT * 2, bye).await.is_err() {
            debug!("Redis did not answer the goodbye");
        }
    }
}

fn encode<T: Serialize>(value: &T) -> String {
    // Ids, names and relayed JSON: serialising cannot fail.
    serde_json::to_string(value).unwrap_or_default()
}

/// One message on an instance's channel: a join or leave (from a script), or a batch of signals.
fn read_said(payload: &[u8]) -> serde_json::Result<Vec<Said>> {
    if payload.first() == Some(&b'[') {
        serde_json::from_slice(payload)
    } else {
        serde_json::from_slice(payload).map(|said| vec![said])
    }
}

fn parse_seat(entry: &str) -> Option<Seat> {
    let (instance, peer) = entry.split_once(' ')?;
    Some(Seat { instance: instance.parse().ok()?, peer: serde_json::from_str(peer).ok()? })
}

#[cfg(test)]
mod tests {
    use super::*;
    use confab_proto::{ClientKind, DisplayName, SignalData};

    #[test]
    fn what_instances_say_reads_back_as_it_was_said() {
        let peer = PeerInfo {
            id: PeerId::random(),
            name: DisplayName::new("Ada <b>").unwrap(),
            client: ClientKind::Browser,
        };
        let said = [
            Said::Joined { room: RoomId::random(), instance: "x".into(), peer: peer.clone() },
            Said::Left { id: PeerId::random() },
            Said::Signal {
                from: PeerId::random(),
                to: PeerId::random(),
                data: SignalData::Candidate { candidate: None }.into(),
            },
        ];
        let batch = encode(&said);
        for said in said {
            let text = encode(&said);
            assert_eq!(read_said(text.as_bytes()).unwrap(), vec![said], "{text}");
        }
        assert_eq!(read_said(batch.as_bytes()).unwrap().len(), 3, "{batch}");
        assert!(read_said(b"[{\"left\":{\"id\":\"short\"}}]").is_err());
        let seat = parse_seat(&format!("{} {}", InstanceId::random(), encode(&peer))).unwrap();
        assert_eq!(seat.peer, peer);
        assert!(parse_seat("no-space").is_none() && parse_seat("bad! {}").is_none());
    }
}
