//! The mesh's rules for rejoins, instances and refused hellos, each against the pure state
//! machine in virtual time (the randomized runs in `simulation.rs` mix them all; these name
//! them one by one). Over real WebRTC, `rejoin.rs` covers the same ground more slowly.
#![allow(clippy::unwrap_used)]

mod common;

use common::sim::Sim;
use confab_core::EngineEvent;
use confab_core::api::NotesPatch;
use confab_core::mesh::Command;
use confab_proto::limits::{SYNC_MESSAGE_BURST, SYNC_MESSAGES_PER_SECOND};

/// Long enough for any connection here to come up, fail or be given up.
const SETTLE_MS: u64 = 60_000;

fn meeting(seed: u64, names: &[&str]) -> Sim {
    let mut sim = Sim::new(seed);
    for name in names {
        sim.add(name);
    }
    sim.run_for(SETTLE_MS);
    assert_eq!(sim.check(), Vec::<String>::new(), "the meeting did not come together");
    sim
}

fn count(sim: &Sim, who: usize, what: impl Fn(&EngineEvent) -> bool) -> usize {
    sim.parts[who].log.iter().filter(|e| what(e)).count()
}

fn connected_count(sim: &Sim, who: usize) -> usize {
    count(sim, who, |e| matches!(e, EngineEvent::PeerConnected { .. }))
}

#[test]
fn after_a_server_restart_everyone_is_there_once() {
    for seed in 0..20 {
        let mut sim = meeting(seed, &["Ada", "Bo", "Cy"]);
        sim.command(0, Command::Say("before".into()));
        sim.restart_server();
        sim.run_for(SETTLE_MS);
        sim.command(2, Command::Say("after".into()));
        sim.run_for(SETTLE_MS);
        assert_eq!(sim.check(), Vec::<String>::new(), "seed {seed}");
        for who in 0..3 {
            // Connections are replaced, never doubled: nobody ever showed a peer twice.
            let part = &sim.parts[who];
            assert_eq!(part.view.most_shown, 2, "seed {seed}: {} showed too many", part.name);
            assert_eq!(part.view.chat_ids.len(), 2, "seed {seed}");
        }
    }
}

/// Cy's signaling connection dies without the server noticing (its address went away), and Cy
/// joins again while the server still seats its old id: Cy must not take its own old seat for
/// someone else, and nobody shows anyone twice.
#[test]
fn a_rejoin_while_the_server_still_seats_our_old_id_makes_no_ghost() {
    for seed in 0..20 {
        let mut sim = meeting(seed, &["Ada", "Bo", "Cy"]);
        let cy_first = sim.ids()[&2].clone();
        sim.lose_signaling_unnoticed(2);
        sim.run_for(10_000);
        sim.server_notices_dead_connections();
        sim.run_for(SETTLE_MS);
        assert_eq!(sim.check(), Vec::<String>::new(), "seed {seed}");
        let ghost = count(&sim, 2, |e| match e {
            EngineEvent::PeerJoined { id, .. } | EngineEvent::PeerConnected { id, .. } => {
                *id == cy_first
            }
            _ => false,
        });
        assert_eq!(ghost, 0, "seed {seed}: Cy showed its own old seat as someone else");
        for who in 0..3 {
            let part = &sim.parts[who];
            assert_eq!(part.view.most_shown, 2, "seed {seed}: {} showed too many", part.name);
        }
    }
}

#[test]
fn a_peer_that_rejoins_signaling_alone_keeps_its_connections() {
    for seed in 0..20 {
        let mut sim = meeting(seed, &["Ada", "Bo", "Cy"]);
        let before: Vec<usize> = (0..3).map(|who| connected_count(&sim, who)).collect();
        let cy_first = sim.ids()[&2].clone();
        sim.set_signaling_cut(2, true);
        sim.run_for(5_000);
        sim.command(2, Command::Splice { pos: 0, delete: 0, text: "offline?".into() });
        sim.run_for(1_000);
        assert_eq!(sim.parts[0].view.notes, "offline?", "seed {seed}: peer to peer still works");
        sim.set_signaling_cut(2, false);
        sim.run_for(SETTLE_MS);
        assert_eq!(sim.check(), Vec::<String>::new(), "seed {seed}");
        let cy_now = sim.ids()[&2].clone();
        assert_ne!(cy_first, cy_now, "seed {seed}: Cy joined again under a new id");
        for (who, connected_before) in before.into_iter().enumerate().take(2) {
            // The same connection, renamed: never connected anew.
            assert_eq!(connected_count(&sim, who), connected_before, "seed {seed}");
            let renamed = count(
                &sim,
                who,
                |e| matches!(e, EngineEvent::PeerRenamed { old, id } if *old == cy_first && *id == cy_now),
            );
            assert_eq!(renamed, 1, "seed {seed}: {} renamed Cy once", sim.parts[who].name);
        }
    }
}

#[test]
fn two_peers_that_rejoin_at_once_settle_on_one_connection() {
    for seed in 0..20 {
        let mut sim = meeting(seed, &["Ada", "Bo", "Cy"]);
        sim.set_signaling_cut(1, true);
        sim.set_signaling_cut(2, true);
        sim.run_for(3_000);
        sim.set_signaling_cut(1, false);
        sim.set_signaling_cut(2, false);
        sim.run_for(SETTLE_MS);
        assert_eq!(sim.check(), Vec::<String>::new(), "seed {seed}");
        for who in 0..3 {
            let shown = sim.parts[who].view.connected.len();
            assert_eq!(shown, 2, "seed {seed}: {} shows {shown} peers", sim.parts[who].name);
        }
    }
}

#[test]
fn a_peer_without_the_key_is_refused_and_reported() {
    let mut sim = meeting(1, &["Ada", "Bo"]);
    let eve = sim.add("Eve");
    // Set before any time passes, so before her first hello.
    sim.parts[eve].wrong_key = true;
    sim.run_for(SETTLE_MS);
    for who in 0..2 {
        let part = &sim.parts[who];
        let intercepted = count(&sim, who, |e| matches!(e, EngineEvent::Intercepted { .. }));
        assert!(intercepted > 0, "{} was not told of the interception", part.name);
        assert_eq!(part.view.connected.len(), 1, "{} shows only the other", part.name);
        assert!(part.mesh.as_ref().unwrap().connected_peers().count() == 1);
    }
}

#[test]
fn a_connection_that_fails_while_both_stay_is_made_again() {
    for seed in 0..20 {
        let mut sim = meeting(seed, &["Ada", "Bo"]);
        sim.partition(&[0]);
        sim.command(0, Command::Splice { pos: 0, delete: 0, text: "Ada alone. ".into() });
        sim.command(1, Command::Splice { pos: 0, delete: 0, text: "Bo alone. ".into() });
        // Long enough for the connection to fail on both sides.
        sim.run_for(40_000);
        assert!(count(&sim, 0, |e| matches!(e, EngineEvent::PeerFailed { .. })) > 0);
        sim.heal();
        sim.run_for(SETTLE_MS);
        assert_eq!(sim.check(), Vec::<String>::new(), "seed {seed}");
        let notes = &sim.parts[0].view.notes;
        assert!(notes.contains("Ada alone.") && notes.contains("Bo alone."), "{notes}");
    }
}

#[test]
fn a_connection_that_loses_its_path_for_a_moment_says_so_and_comes_back() {
    for seed in 0..20 {
        let mut sim = meeting(seed, &["Ada", "Bo"]);
        sim.partition(&[0]);
        // Past the moment a connection notices, short of the moment it fails.
        sim.run_for(8_000);
        let path = |sim: &Sim, who, up| {
            count(sim, who, |e| matches!(e, EngineEvent::PeerConnection { up: u, .. } if *u == up))
        };
        assert_eq!((path(&sim, 0, false), path(&sim, 1, false)), (1, 1), "seed {seed}: both told");
        sim.heal();
        sim.run_for(2_000);
        assert_eq!((path(&sim, 0, true), path(&sim, 1, true)), (1, 1), "seed {seed}: both back");
        sim.command(0, Command::Say("still here".into()));
        sim.run_for(2_000);
        assert_eq!(sim.check(), Vec::<String>::new(), "seed {seed}");
        for who in 0..2 {
            // The same connection all along: never failed, never made anew.
            assert_eq!(count(&sim, who, |e| matches!(e, EngineEvent::PeerFailed { .. })), 0);
            assert_eq!(connected_count(&sim, who), 1, "seed {seed}");
        }
    }
}

/// A flood of changes (a third peer's, passed on) leaves paced: past a burst, at most
/// `SYNC_MESSAGES_PER_SECOND` sync messages a second to each peer, each carrying what changed
/// meanwhile, so the peer passing it on never goes over the others' flood limit itself; and
/// everything still arrives.
#[test]
fn a_flood_of_changes_goes_out_paced() {
    const CHANGES: usize = 4000;
    for seed in 0..3 {
        let mut sim = meeting(seed, &["Ada", "Bo", "Cy"]);
        let start = sim.now();
        let sent_before = sim.parts[0].sync_sent.len();
        // Four thousand changes over two seconds, far faster than anyone types.
        for n in 0..CHANGES {
            sim.command(0, Command::Say(format!("flood {n}")));
            if n % 20 == 19 {
                sim.run_for(10);
            }
        }
        sim.run_for(10_000);
        for who in 1..3 {
            assert_eq!(sim.parts[who].view.chat_ids.len(), CHANGES, "seed {seed}: all arrive");
        }
        let sent = &sim.parts[0].sync_sent[sent_before..];
        for to in 1..3 {
            let times: Vec<u64> =
                sent.iter().filter(|(_, t)| *t == to).map(|(at, _)| *at).collect();
            // Unpaced, every change would be a message of its own.
            let allowed = SYNC_MESSAGE_BURST + 3 * SYNC_MESSAGES_PER_SECOND;
            assert!(
                times.len() <= allowed as usize,
                "seed {seed}: {} messages for {CHANGES} changes in 2 s",
                times.len()
            );
            assert!(times.iter().all(|at| *at >= start), "seed {seed}");
        }
        assert_eq!(sim.check(), Vec::<String>::new(), "seed {seed}");
    }
}

#[test]
fn a_flooding_peer_is_disconnected_and_the_others_carry_on() {
    use confab_proto::limits::PEER_MESSAGE_BURST;
    for seed in 0..5 {
        let mut sim = meeting(seed, &["Ada", "Bo", "Cy"]);
        let cy = sim.ids()[&2].clone();
        // Cy sends Ada far more at once than any meeting needs.
        sim.flood(2, 0, 2 * PEER_MESSAGE_BURST as usize);
        sim.run_for(SETTLE_MS);
        let flooded = |e: &EngineEvent| matches!(e, EngineEvent::PeerFailed { id, reason } if *id == cy && reason.contains("far more"));
        assert_eq!(count(&sim, 0, flooded), 1, "seed {seed}: Ada says why Cy went");
        assert!(!sim.parts[0].view.connected.contains_key(&cy), "seed {seed}: not made again");
        // Ada and Bo carry on, and so do Bo and Cy.
        sim.command(1, Command::Say("still here".into()));
        sim.run_for(2_000);
        for who in 0..3 {
            assert_eq!(
                sim.parts[who].view.chat_ids.len(),
                1,
                "seed {seed}: {}",
                sim.parts[who].name
            );
        }
    }
}

/// Front ends count notes positions in UTF-16 units, as editors do; so do the patches they get.
#[test]
fn notes_positions_are_utf16_units_both_ways() {
    let mut sim = meeting(3, &["Ada", "Bo"]);
    let splice = |pos, delete, text: &str| Command::Splice { pos, delete, text: text.into() };
    sim.command(0, splice(0, 0, "😀"));
    sim.command(0, splice(2, 0, "x"));
    // Between the two halves of the emoji is no place in the text: refused, nothing changes.
    sim.command(0, splice(1, 0, "!"));
    sim.run_for(2_000);
    assert_eq!(sim.parts[0].view.notes, "😀x");
    assert_eq!(sim.parts[1].view.notes, "😀x", "Bo got the same text");
    let insert_x = vec![NotesPatch::Insert { pos: 2, text: "x".into() }];
    assert_eq!(last_patches(&sim, 0), Some(insert_x.clone()));
    assert_eq!(last_patches(&sim, 1), Some(insert_x));
    sim.command(1, splice(0, 2, ""));
    sim.run_for(2_000);
    assert_eq!(sim.parts[0].view.notes, "x");
    assert_eq!(last_patches(&sim, 0), Some(vec![NotesPatch::Delete { pos: 0, len: 2 }]));
}

fn last_patches(sim: &Sim, who: usize) -> Option<Vec<NotesPatch>> {
    sim.parts[who].log.iter().rev().find_map(|e| match e {
        EngineEvent::Notes { patches, .. } => Some(patches.clone()),
        _ => None,
    })
}

/// The latest positions `who` was told of the others' selections.
fn cursors_seen(sim: &Sim, who: usize) -> Vec<(usize, usize)> {
    let last = sim.parts[who].log.iter().rev().find_map(|e| match e {
        EngineEvent::Cursors { cursors } => Some(cursors),
        _ => None,
    });
    last.map(|cursors| cursors.iter().map(|c| (c.anchor, c.head)).collect()).unwrap_or_default()
}

#[test]
fn a_selection_is_seen_by_the_others_and_moves_with_their_typing() {
    use confab_core::api::NotesSelection;
    for seed in 0..5 {
        let mut sim = meeting(seed, &["Ada", "Bo"]);
        sim.command(0, Command::Splice { pos: 0, delete: 0, text: "héllo wörld".into() });
        sim.run_for(1_000);
        sim.command(0, Command::Cursor(Some(NotesSelection { anchor: 6, head: 11 })));
        sim.run_for(1_000);
        assert_eq!(cursors_seen(&sim, 1), [(6, 11)], "seed {seed}: Bo sees Ada's selection");

        // Bo types before it, in UTF-16 units past the BMP: the selection stays on its words.
        sim.command(1, Command::Splice { pos: 0, delete: 0, text: "🎉 ".into() });
        sim.run_for(1_000);
        assert_eq!(cursors_seen(&sim, 1), [(9, 14)], "seed {seed}: it moved with Bo's typing");

        // A selection past the end is refused and changes nothing; leaving the notes takes the
        // caret away.
        sim.command(0, Command::Cursor(Some(NotesSelection { anchor: 0, head: 99 })));
        sim.run_for(1_000);
        assert_eq!(cursors_seen(&sim, 1), [(9, 14)], "seed {seed}");
        sim.command(0, Command::Cursor(None));
        sim.run_for(1_000);
        assert_eq!(cursors_seen(&sim, 1), [], "seed {seed}: Ada left the notes");
        assert_eq!(sim.check(), Vec::<String>::new(), "seed {seed}");
    }
}

/// A local edit goes to the peers before its disk sync. Ada crashes in between: her disk lacks
/// "hello", Bo holds it. Ada comes back and types at once, before Bo gives "hello" back; then
/// the two agree, with both words once. (Coming back as her old actor, her new edit would take
/// the lost edit's number, and Bo would refuse it: she comes back as a fresh one.)
#[test]
fn an_edit_sent_but_lost_to_a_crash_comes_back_from_the_peers() {
    for seed in 0..20 {
        let mut sim = meeting(seed, &["Ada", "Bo"]);
        let type_at_end = |sim: &mut Sim, who: usize, text: &str| {
            let pos = sim.parts[who].view.notes.encode_utf16().count();
            sim.command(who, Command::Splice { pos, delete: 0, text: text.into() });
        };
        type_at_end(&mut sim, 0, "hello");
        sim.crash(0);
        sim.run_for(SETTLE_MS);
        assert_eq!(sim.parts[1].view.notes, "hello", "seed {seed}: Bo never got it");
        sim.start(0);
        assert_eq!(sim.parts[0].view.notes, "", "seed {seed}: the crash lost nothing");
        type_at_end(&mut sim, 0, " world");
        sim.run_for(SETTLE_MS);
        assert_eq!(sim.check(), Vec::<String>::new(), "seed {seed}");
        // Both typed at the start of empty notes: which word comes first is the merge's choice.
        let notes = &sim.parts[1].view.notes;
        assert!(notes == "hello world" || notes == " worldhello", "seed {seed}: {notes:?}");
    }
}
