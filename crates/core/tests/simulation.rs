//! Randomized meetings in virtual time: 3–6 participants join, leave, crash, come back, edit
//! the notes, chat, lose signaling, see the server restart and the network split and heal. Once it
//! has healed and settled, everyone must hold the same notes, title and chat, each message
//! once, and see exactly the others, no ghost and no one twice.
//!
//! Each run names its seed on failure; `CONFAB_SEED=N cargo test -p confab-core --test
//! simulation` replays one. `CONFAB_SIM_RUNS=N` adds N runs with fresh random seeds.
#![allow(clippy::unwrap_used)]

mod common;

use common::sim::Sim;
use confab_core::mesh::Command;
use confab_proto::text::char_to_utf16;
use rand::Rng;

/// Seeds that once failed, kept so the bugs they found stay fixed.
/// (Each is a seed of the code it failed on: the runs they make change as the code does.)
const REGRESSIONS: &[u64] = &[2, 22, 106, 126, 241];
/// Seeds every `make test` runs.
const DEFAULT_SEEDS: u64 = 300;
/// Actions in one run.
const STEPS: usize = 40;
/// Virtual time given to settle after the last fault: longer than a connection takes to fail
/// (15 s) and to give up connecting (30 s), with room for the reconnection after.
const SETTLE_MS: u64 = 120_000;

#[test]
fn every_meeting_converges_once_the_network_heals() {
    let seeds: Vec<u64> = match std::env::var("CONFAB_SEED") {
        Ok(seed) => vec![seed.parse().expect("CONFAB_SEED is a number")],
        Err(_) => {
            let extra: usize = std::env::var("CONFAB_SIM_RUNS").map_or(0, |n| n.parse().unwrap());
            let mut rng = rand::rng();
            (REGRESSIONS.iter().copied())
                .chain(1..=DEFAULT_SEEDS)
                .chain((0..extra).map(|_| rng.random()))
                .collect()
        }
    };
    for seed in seeds {
        // Shown with --nocapture: which run a hang is in.
        eprintln!("seed {seed}");
        let sim = run(seed);
        let problems = sim.check();
        if !problems.is_empty() && std::env::var_os("CONFAB_SIM_LOG").is_some() {
            for part in &sim.parts {
                eprintln!("== {}", part.name);
                for event in &part.log {
                    eprintln!("   {event:?}");
                }
            }
        }
        assert!(
            problems.is_empty(),
            "seed {seed} failed; replay with CONFAB_SEED={seed}\n{}\nlast steps:\n{}",
            problems.join("\n"),
            sim.trace.iter().cloned().collect::<Vec<_>>().join("\n"),
        );
    }
}

fn run(seed: u64) -> Sim {
    let mut sim = Sim::new(seed);
    let size = sim.rng.random_range(3..=6);
    let names = ["Ada", "Bo", "Cy", "Di", "Ed", "Flo"];
    for name in &names[..2] {
        sim.add(name);
    }
    for step in 0..STEPS {
        let pause = sim.rng.random_range(0..1_500);
        sim.run_for(pause);
        let count = sim.parts.len();
        let who = sim.rng.random_range(0..count);
        match sim.rng.random_range(0..100) {
            0..30 => edit(&mut sim, who),
            30..45 => {
                let text = format!("message {step} from {}", sim.parts[who].name);
                sim.command(who, Command::Say(text));
            }
            45..50 => sim.command(who, Command::SetTitle(format!("title {step}"))),
            50..60 if count < size => {
                sim.add(names[count]);
            }
            60..66 => sim.leave(who),
            66..74 if !sim.online(who) => sim.start(who),
            74..78 => sim.restart_server(),
            78..84 => sim.set_signaling_cut(who, true),
            84..87 => sim.set_signaling_cut(who, false),
            87..93 => {
                let side: Vec<usize> = (0..count).filter(|_| sim.rng.random_bool(0.5)).collect();
                sim.partition(&side);
            }
            93..97 => sim.heal(),
            97..100 => sim.crash(who),
            _ => {}
        }
    }
    sim.heal();
    for who in 0..sim.parts.len() {
        if !sim.online(who) {
            sim.start(who);
        }
    }
    sim.run_for(SETTLE_MS);
    sim
}

/// Types or deletes a little somewhere in the notes, as an editor would: at character
/// boundaries, in the UTF-16 positions editors count in.
fn edit(sim: &mut Sim, who: usize) {
    let Some(notes) = sim.parts[who].mesh.as_ref().map(|m| m.doc().notes()) else {
        return;
    };
    let chars = notes.chars().count();
    let start = sim.rng.random_range(0..=chars);
    let pos = char_to_utf16(&notes, start);
    let command = if start < chars && sim.rng.random_bool(0.3) {
        let end = start + sim.rng.random_range(1..=(chars - start).min(5));
        let delete = char_to_utf16(&notes, end) - pos;
        Command::Splice { pos, delete, text: String::new() }
    } else {
        let words = ["agenda ", "ünïcode ", "😀 ", "next steps\n", "- item "];
        let text = words[sim.rng.random_range(0..words.len())].to_owned();
        Command::Splice { pos, delete: 0, text }
    };
    sim.command(who, command);
}
