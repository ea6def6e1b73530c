//! Rendezvous-hashed rows (glb-director.md §4, with the row rule of decisions.md §2).
//!
//! Every row ranks the candidate backends (all but `inactive`) by
//! `SipHash(seed, row_seed ‖ address)`, ascending, exactly as GLB does. Only three positions of
//! that order matter — the first, the second and the first *good* one — so each row is a single
//! pass that tracks those three instead of sorting (256 backends: 256 scores per row, no sort).
//!
//! The row rule:
//! - first is good (active or filling, and healthy) → (first, second), as GLB;
//! - first is not good, some candidate is → (first good, first): the displaced owner stays the
//!   second chance so its connections survive (equal to GLB's swap whenever that lands on a good
//!   backend; fixes GLB issue #77);
//! - nobody is good → (first, second): fail open, as GLB;
//! - a single candidate → (c, c).
//!
//! Rows are independent, so large tables are split across all cores with rayon.

use crate::TABLE_ENTRIES;
use crate::config::Table;
use crate::hash::RowScorer;
use rayon::prelude::*;

/// One row: slot indices (into the table's backend list) of the primary and the secondary.
#[derive(Debug, Clone, Copy, PartialEq, Eq, Default)]
pub struct Row {
    /// Where new and existing flows of this row go first.
    pub primary: u8,
    /// The second chance, listed in the GUE header.
    pub secondary: u8,
}

/// Rows handed to one rayon task; big enough to amortise scheduling, small enough to balance.
const ROWS_PER_TASK: usize = 2048;

struct Candidate {
    slot: u8,
    address: [u8; 4],
    good: bool,
}

/// Generates all 65 536 rows of `table`.
#[must_use]
pub fn rows(table: &Table) -> Vec<Row> {
    let candidates: Vec<Candidate> = table
        .backends()
        .iter()
        .zip(0u8..=u8::MAX)
        .filter(|(b, _)| b.state.is_candidate())
        .map(|(b, slot)| Candidate { slot, address: b.address.octets(), good: b.is_good() })
        .collect();
    let mut rows = vec![Row::default(); TABLE_ENTRIES];
    rows.par_chunks_mut(ROWS_PER_TASK).enumerate().for_each(|(task, chunk)| {
        let base = u32::try_from(task * ROWS_PER_TASK).expect("row numbers are below 65536");
        for (row, out) in (base..).zip(chunk.iter_mut()) {
            *out = row_for(&candidates, &RowScorer::new(table.seed(), row));
        }
    });
    rows
}

/// Position in `candidates` and score of a ranked candidate.
#[derive(Clone, Copy)]
struct Ranked {
    index: usize,
    score: u64,
}

impl Ranked {
    fn beats(score: u64, current: Option<Ranked>) -> bool {
        current.is_none_or(|c| score < c.score)
    }
}

fn row_for(candidates: &[Candidate], scorer: &RowScorer) -> Row {
    let mut first: Option<Ranked> = None;
    let mut second: Option<Ranked> = None;
    let mut first_good: Option<Ranked> = None;
    for (index, candidate) in candidates.iter().enumerate() {
        let score = scorer.score(candidate.address);
        let ranked = Some(Ranked { index, score });
        if Ranked::beats(score, first) {
            second = first;
            first = ranked;
        } else if Ranked::beats(score, second) {
            second = ranked;
        }
        if candidate.good && Ranked::beats(score, first_good) {
            first_good = ranked;
        }
    }
    let slot = |r: Option<Ranked>| r.map(|r| candidates[r.index].slot);
    let (Some(first_slot), Some(good)) = (slot(first), first_good.map(|g| &candidates[g.index])) else {
        // Nobody is good (or, impossibly for a validated table, nobody at all): fail open.
        let first_slot = slot(first).unwrap_or(0);
        return Row { primary: first_slot, secondary: slot(second).unwrap_or(first_slot) };
    };
    if good.slot == first_slot {
        Row { primary: first_slot, secondary: slot(second).unwrap_or(first_slot) }
    } else {
        Row { primary: good.slot, secondary: first_slot }
    }
}
