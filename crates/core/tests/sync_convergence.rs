//! Random edits on 2–4 replicas, synced over a simulated channel that drops, duplicates and
//! reorders frames and reconnects (which resets sync state). Once the network heals, every
//! replica must hold the same heads and the same text. proptest shrinks any failure to a short
//! script of actions.
#![allow(clippy::unwrap_used)]

use std::collections::VecDeque;

use automerge::ActorId;
use confab_core::{MeetingDoc, PeerSync};
use proptest::prelude::*;

#[derive(Debug, Clone)]
enum Action {
    /// Replica edits its notes: at a position (a fraction of the length), deleting up to `delete`
    /// characters, inserting `text`.
    Edit { replica: usize, at: f64, delete: usize, text: String },
    /// The sender side of link (from → to) says what it has.
    Poll { from: usize, to: usize },
    /// The oldest frame in flight on (from → to) arrives, or is lost, or arrives twice.
    Deliver { from: usize, to: usize, fault: Fault },
    /// The first two frames in flight on (from → to) swap order.
    Reorder { from: usize, to: usize },
    /// The connection between a and b drops and comes back: frames in flight are lost and both
    /// sides start their sync state over.
    Reconnect { a: usize, b: usize },
}

#[derive(Debug, Clone, Copy)]
enum Fault {
    None,
    Drop,
    Duplicate,
}

struct Net {
    docs: Vec<MeetingDoc>,
    /// `sync[i][j]`: replica i's state towards replica j.
    sync: Vec<Vec<PeerSync>>,
    /// `wire[i][j]`: frames from i to j, in flight.
    wire: Vec<Vec<VecDeque<Vec<u8>>>>,
}

impl Net {
    fn new(n: usize) -> Self {
        Self {
            docs: (0..n).map(|i| MeetingDoc::new(ActorId::from([i as u8 + 1; 16]))).collect(),
            sync: (0..n).map(|_| (0..n).map(|_| PeerSync::new()).collect()).collect(),
            wire: (0..n).map(|_| (0..n).map(|_| VecDeque::new()).collect()).collect(),
        }
    }

    fn poll(&mut self, from: usize, to: usize) -> bool {
        let mut sent = false;
        while let Some(frame) = self.sync[from][to].poll(&mut self.docs[from]) {
            self.wire[from][to].push_back(frame);
            sent = true;
        }
        sent
    }

    fn deliver(&mut self, from: usize, to: usize, fault: Fault) {
        let Some(frame) = self.wire[from][to].pop_front() else { return };
        let copies = match fault {
            Fault::None => 1,
            Fault::Drop => 0,
            Fault::Duplicate => 2,
        };
        for _ in 0..copies {
            // Frames are well-formed here: a refusal would be a bug in the sync layer.
            self.sync[to][from].receive(&mut self.docs[to], &frame).unwrap();
        }
    }

    fn reconnect(&mut self, a: usize, b: usize) {
        self.wire[a][b].clear();
        self.wire[b][a].clear();
        self.sync[a][b].reset();
        self.sync[b][a].reset();
    }

    fn apply(&mut self, action: &Action) {
        let n = self.docs.len();
        match *action {
            Action::Edit { replica, at, delete, ref text } => {
                let doc = &mut self.docs[replica % n];
                let len = doc.notes_len();
                let pos = (((len as f64) * at) as usize).min(len);
                doc.splice_notes(pos, delete.min(len - pos), text).unwrap();
            }
            Action::Poll { from, to } if from % n != to % n => {
                self.poll(from % n, to % n);
            }
            Action::Deliver { from, to, fault } if from % n != to % n => {
                self.deliver(from % n, to % n, fault)
            }
            Action::Reorder { from, to } if from % n != to % n => {
                let q = &mut self.wire[from % n][to % n];
                if q.len() >= 2 {
                    q.swap(0, 1);
                }
            }
            Action::Reconnect { a, b } if a % n != b % n => self.reconnect(a % n, b % n),
            _ => {}
        }
    }

    /// The network heals: every link reconnects, then frames flow reliably until nobody has
    /// anything left to say.
    fn heal(&mut self) {
        let n = self.docs.len();
        for a in 0..n {
            for b in a + 1..n {
                self.reconnect(a, b);
            }
        }
        for round in 0.. {
            assert!(round < 200, "sync did not settle");
            let mut moved = false;
            for from in 0..n {
                for to in 0..n {
                    if from != to {
                        moved |= self.poll(from, to);
                        while !self.wire[from][to].is_empty() {
                            self.deliver(from, to, Fault::None);
                            moved = true;
                        }
                    }
                }
            }
            if !moved {
                break;
            }
        }
    }
}

fn action() -> impl Strategy<Value = Action> {
    let r = 0..4usize;
    let fault =
        prop_oneof![6 => Just(Fault::None), 2 => Just(Fault::Drop), 1 => Just(Fault::Duplicate)];
    prop_oneof![
        4 => (r.clone(), 0.0..=1.0f64, 0..4usize, "[a-zé😀 \n]{0,6}")
            .prop_map(|(replica, at, delete, text)| Action::Edit { replica, at, delete, text }),
        4 => (r.clone(), r.clone()).prop_map(|(from, to)| Action::Poll { from, to }),
        6 => (r.clone(), r.clone(), fault).prop_map(|(from, to, fault)| Action::Deliver { from, to, fault }),
        1 => (r.clone(), r.clone()).prop_map(|(from, to)| Action::Reorder { from, to }),
        1 => (r.clone(), r).prop_map(|(a, b)| Action::Reconnect { a, b }),
    ]
}

proptest! {
    #![proptest_config(ProptestConfig::with_cases(300))]

    #[test]
    fn replicas_converge_whatever_the_network_did(
        replicas in 2..=4usize,
        actions in prop::collection::vec(action(), 0..120),
    ) {
        let mut net = Net::new(replicas);
        for a in &actions {
            net.apply(a);
        }
        net.heal();
        let (first, others) = net.docs.split_first_mut().unwrap();
        let (heads, text) = (first.heads(), first.notes());
        for (i, doc) in others.iter_mut().enumerate() {
            prop_assert_eq!(doc.heads(), heads.clone(), "heads of replica {}", i + 1);
            prop_assert_eq!(doc.notes(), text.clone(), "text of replica {}", i + 1);
        }
    }
}

/// Every edit any replica made survives: each replica appends a unique word, and after healing
/// every word is in everyone's text.
#[test]
fn no_edit_is_lost_across_reconnects() {
    let mut net = Net::new(3);
    for round in 0..20 {
        for r in 0..3 {
            let word = format!("[r{r}w{round}]");
            let len = net.docs[r].notes_len();
            net.docs[r].splice_notes(len, 0, &word).unwrap();
        }
        net.poll(0, 1);
        net.deliver(0, 1, if round % 3 == 0 { Fault::Drop } else { Fault::None });
        if round % 5 == 4 {
            net.reconnect(1, 2);
        }
    }
    net.heal();
    for doc in &net.docs {
        let text = doc.notes();
        for round in 0..20 {
            for r in 0..3 {
                assert!(text.contains(&format!("[r{r}w{round}]")), "lost r{r}w{round}");
            }
        }
    }
}
