//! Keeping a connection up (docs/protocol.md §3, "Recovery"), as a pure state machine: when to
//! restart ICE, and when to give the connection up. The connection's task carries the decisions
//! out; restarts are offers like any other, so perfect negotiation settles two at once.
//!
//! ```
//! use std::time::{Duration, Instant};
//! use confab_core::peer::recovery::{Recovery, Input, Action};
//!
//! let start = Instant::now();
//! let mut r = Recovery::default();
//! r.handle(start, Input::Up);
//! r.handle(start, Input::Down);
//! // A drop that heals by itself is left alone; one that lasts gets an ICE restart.
//! assert_eq!(r.handle(start + Duration::from_secs(1), Input::Tick), None);
//! assert_eq!(r.handle(start + Duration::from_secs(2), Input::Tick), Some(Action::Restart));
//! ```

use std::time::{Duration, Instant};

use confab_proto::limits::{ICE_RESTART_AFTER, ICE_RESTART_EVERY, ICE_RESTART_GIVE_UP};

/// What happened to the connection, or around it.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub enum Input {
    /// The connection is `connected`.
    Up,
    /// The connection went `disconnected` (packets stopped, and may start again), or
    /// `connecting` again (a restart is under way, and its offer may yet be lost).
    Down,
    /// The connection went `failed`: ICE gave this path up.
    Failed,
    /// This machine's addresses changed: a path may run over an address that is gone.
    NetworkChanged,
    /// We rejoined signaling: offers sent while it was gone went nowhere.
    SignalingBack,
    /// Time passed.
    Tick,
}

#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub enum Action {
    /// Offer with fresh ICE credentials, gathering on the addresses this machine has now.
    Restart,
    /// The connection is lost: close it (the mesh connects again from scratch).
    GiveUp,
}

#[derive(Debug, Clone, Default)]
pub struct Recovery {
    /// The connection has been up: until then, failing is the connect timeout's business.
    was_up: bool,
    /// Since when the connection has been down, if it is.
    down_since: Option<Instant>,
    /// Our last restart during this outage.
    restarted_at: Option<Instant>,
}

impl Recovery {
    /// Whether the connection is down after having been up: the UI says "reconnecting".
    pub fn reconnecting(&self) -> bool {
        self.down_since.is_some()
    }

    pub fn handle(&mut self, now: Instant, input: Input) -> Option<Action> {
        match input {
            Input::Up => {
                self.was_up = true;
                self.down_since = None;
                self.restarted_at = None;
                None
            }
            Input::Down if self.was_up => {
                self.down_since.get_or_insert(now);
                None
            }
            // A connection that never came up has no path to restart.
            Input::Down => None,
            Input::Failed if !self.was_up => Some(Action::GiveUp),
            Input::Failed => {
                self.down_since.get_or_insert(now);
                // ICE reports the generation it gave up; a restart just made is a new one.
                let recent = self.since_restart(now).is_some_and(|t| t < ICE_RESTART_AFTER);
                (!recent).then(|| self.restart(now))
            }
            Input::NetworkChanged if self.was_up => Some(self.restart(now)),
            Input::SignalingBack if self.reconnecting() => Some(self.restart(now)),
            Input::NetworkChanged | Input::SignalingBack => None,
            Input::Tick => {
                let down_for = now.saturating_duration_since(self.down_since?);
                if down_for >= ICE_RESTART_GIVE_UP {
                    return Some(Action::GiveUp);
                }
                let due = match self.since_restart(now) {
                    None => down_for >= ICE_RESTART_AFTER,
                    Some(since) => since >= ICE_RESTART_EVERY,
                };
                due.then(|| self.restart(now))
            }
        }
    }

    fn restart(&mut self, now: Instant) -> Action {
        self.restarted_at = Some(now);
        Action::Restart
    }

    fn since_restart(&self, now: Instant) -> Option<Duration> {
        self.restarted_at.map(|at| now.saturating_duration_since(at))
    }
}

#[cfg(test)]
mod tests {
    use serde_json::Value;

    use super::*;

    fn input(name: &str) -> Input {
        match name {
            "up" => Input::Up,
            "down" => Input::Down,
            "failed" => Input::Failed,
            "network_changed" => Input::NetworkChanged,
            "signaling_back" => Input::SignalingBack,
            other => panic!("no input {other}"),
        }
    }

    fn action(name: &Value) -> Option<Action> {
        match name.as_str() {
            None => None,
            Some("restart") => Some(Action::Restart),
            Some("give_up") => Some(Action::GiveUp),
            Some(other) => panic!("no action {other}"),
        }
    }

    /// The cases of tests/vectors/recovery.json, which the browser's recovery passes too.
    #[test]
    fn recovery_decides_as_the_shared_vectors_say() {
        let path = concat!(env!("CARGO_MANIFEST_DIR"), "/../../tests/vectors/recovery.json");
        let doc: Value = serde_json::from_str(&std::fs::read_to_string(path).unwrap()).unwrap();
        let start = Instant::now();
        let at = |ms: u64| start + Duration::from_millis(ms);
        for case in doc["cases"].as_array().unwrap() {
            let why = case["why"].as_str().unwrap();
            let mut recovery = Recovery::default();
            for step in case["steps"].as_array().unwrap() {
                if let Some(expected) = step.get("reconnecting") {
                    assert_eq!(Some(recovery.reconnecting()), expected.as_bool(), "{why}: {step}");
                } else if let Some(range) = step.get("ticks") {
                    let (from, to) = (range[0].as_u64().unwrap(), range[1].as_u64().unwrap());
                    let got: Vec<(u64, Option<Action>)> = (from..=to)
                        .step_by(100)
                        .filter_map(|ms| {
                            recovery.handle(at(ms), Input::Tick).map(|a| (ms, Some(a)))
                        })
                        .collect();
                    let expected: Vec<(u64, Option<Action>)> = (step["expect"].as_array().unwrap())
                        .iter()
                        .map(|pair| (pair[0].as_u64().unwrap(), action(&pair[1])))
                        .collect();
                    assert_eq!(got, expected, "{why}: {step}");
                } else {
                    let ms = step["at"].as_u64().unwrap();
                    let got = recovery.handle(at(ms), input(step["input"].as_str().unwrap()));
                    assert_eq!(got, action(&step["expect"]), "{why}: {step}");
                }
            }
        }
    }
}
