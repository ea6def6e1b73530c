//! The per-packet path allocates nothing (style anchor c6): every golden frame goes through
//! `Pipeline::process_burst` many times under a counting global allocator, and the steady-state
//! loop must make zero allocation calls (and zero frees).
//!
//! Setup (loading tables, copying frames) allocates freely; counting is switched on for the
//! measuring thread only, around the steady-state loop, so the test harness's own threads
//! cannot disturb the count.

mod golden;

use glb_director::pipeline::{Counters, ForcedTable, Frame, MAX_HEADROOM, Verdict};
use std::alloc::{GlobalAlloc, Layout, System};
use std::cell::Cell;

/// Frames per `process_burst` call.
const BURST: usize = 32;
/// Passes over all golden frames before counting, and while counting.
const WARM_UP_PASSES: usize = 3;
const COUNTED_PASSES: usize = 200;
/// Bytes per frame slot: headroom plus the largest golden frame.
const SLOT: usize = MAX_HEADROOM + 256;

thread_local! {
    /// Whether this thread's allocation calls are being counted.
    static COUNTING: Cell<bool> = const { Cell::new(false) };
    /// Allocation calls (alloc, alloc_zeroed, realloc) and frees made while counting.
    static ALLOCATIONS: Cell<u64> = const { Cell::new(0) };
    static FREES: Cell<u64> = const { Cell::new(0) };
}

fn note(counter: &'static std::thread::LocalKey<Cell<u64>>) {
    // `try_with`: never panic inside the allocator, even while the thread is being torn down.
    if COUNTING.try_with(Cell::get).unwrap_or(false) {
        let _ = counter.try_with(|c| c.set(c.get() + 1));
    }
}

/// `System`, counting calls on threads that asked for it.
struct CountingAllocator;

// SAFETY: every method forwards its arguments unchanged to `System`, which upholds the
// `GlobalAlloc` contract; the only addition is a thread-local counter update, which neither
// allocates (const-initialised `Cell`s without destructors) nor unwinds.
#[allow(unsafe_code, reason = "a #[global_allocator] is an unsafe impl of GlobalAlloc")]
unsafe impl GlobalAlloc for CountingAllocator {
    unsafe fn alloc(&self, layout: Layout) -> *mut u8 {
        note(&ALLOCATIONS);
        // SAFETY: the caller's guarantees for `layout` are passed on unchanged.
        unsafe { System.alloc(layout) }
    }

    unsafe fn alloc_zeroed(&self, layout: Layout) -> *mut u8 {
        note(&ALLOCATIONS);
        // SAFETY: as for `alloc`.
        unsafe { System.alloc_zeroed(layout) }
    }

    unsafe fn realloc(&self, ptr: *mut u8, layout: Layout, new_size: usize) -> *mut u8 {
        note(&ALLOCATIONS);
        // SAFETY: `ptr` came from this allocator, i.e. from `System`, with `layout`.
        unsafe { System.realloc(ptr, layout, new_size) }
    }

    unsafe fn dealloc(&self, ptr: *mut u8, layout: Layout) {
        note(&FREES);
        // SAFETY: `ptr` came from this allocator, i.e. from `System`, with `layout`.
        unsafe { System.dealloc(ptr, layout) }
    }
}

#[global_allocator]
static ALLOCATOR: CountingAllocator = CountingAllocator;

/// One scenario's frames laid out in fixed slots, with a pristine copy to restore them from
/// (encapsulation rewrites frames in place).
struct Arena {
    scenario: golden::Scenario,
    pristine: Vec<u8>,
    slots: Vec<u8>,
    lens: Vec<usize>,
    /// Where each frame ended up in its slot after the last pass: (start, len).
    spans: Vec<(usize, usize)>,
}

impl Arena {
    fn new(scenario: golden::Scenario) -> Self {
        let mut pristine = vec![0u8; scenario.records.len() * SLOT];
        let mut lens = Vec::new();
        for (slot, rec) in pristine.chunks_exact_mut(SLOT).zip(&scenario.records) {
            slot[MAX_HEADROOM..MAX_HEADROOM + rec.input.len()].copy_from_slice(&rec.input);
            lens.push(rec.input.len());
        }
        let spans = vec![(0, 0); lens.len()];
        Self { slots: pristine.clone(), pristine, lens, spans, scenario }
    }

    /// Restores every frame and runs them through `process_burst` in bursts of [`BURST`].
    /// Allocation-free by construction: fixed arrays, slices of the arena, no collections.
    fn pass(&mut self, counters: &mut Counters, verdicts_out: &mut [Verdict]) {
        self.slots.copy_from_slice(&self.pristine);
        let pipeline = self.scenario.pipeline();
        let table = &self.scenario.table;
        let forced = self.scenario.force_table.map(ForcedTable);
        let mut slots = self.slots.chunks_exact_mut(SLOT);
        for ((lens, out), spans) in
            self.lens.chunks(BURST).zip(verdicts_out.chunks_mut(BURST)).zip(self.spans.chunks_mut(BURST))
        {
            let mut frames: [Frame<'_>; BURST] = std::array::from_fn(|i| match lens.get(i) {
                Some(&len) => Frame::new(slots.next().expect("one slot per frame"), MAX_HEADROOM, len),
                None => Frame::new(&mut [], 0, 0),
            });
            let frames = &mut frames[..lens.len()];
            let out = &mut out[..lens.len()];
            match &forced {
                Some(matcher) => pipeline.process_burst_with(table, matcher, frames, out, counters),
                None => pipeline.process_burst(table, frames, out, counters),
            }
            for (span, frame) in spans.iter_mut().zip(frames.iter()) {
                *span = (frame.start(), frame.len());
            }
        }
    }
}

#[test]
fn steady_state_processing_allocates_nothing() {
    let mut arenas: Vec<Arena> = golden::scenarios().into_iter().map(Arena::new).collect();
    let frames: usize = arenas.iter().map(|a| a.lens.len()).sum();
    assert_eq!(frames, 307, "the oracle has 307 frames");
    let mut verdicts: Vec<Vec<Verdict>> =
        arenas.iter().map(|a| vec![Verdict::Kernel; a.lens.len()]).collect();

    // Warm-up, allocations allowed: the burst path's verdicts and bytes must be the
    // single-frame path's (so the counted loop below is doing the real work).
    let mut warm = Counters::default();
    for _ in 0..WARM_UP_PASSES {
        for (arena, verdicts) in arenas.iter_mut().zip(&mut verdicts) {
            arena.pass(&mut warm, verdicts);
        }
    }
    for (arena, verdicts) in arenas.iter().zip(&verdicts) {
        for ((rec, slot), (verdict, &(start, len))) in arena
            .scenario
            .records
            .iter()
            .zip(arena.slots.chunks_exact(SLOT))
            .zip(verdicts.iter().zip(&arena.spans))
        {
            let (single, _, bytes) = arena.scenario.run(&rec.input);
            let what = format!("{} idx {}", arena.scenario.name, rec.idx);
            assert_eq!(*verdict, single, "{what}: burst and single verdicts");
            if single == Verdict::Forward {
                assert_eq!(&slot[start..start + len], &bytes[..], "{what}: burst and single bytes");
            }
        }
    }

    // The measured loop: nothing but restoring frames and processing bursts.
    let mut counters = Counters::default();
    COUNTING.with(|c| c.set(true));
    for _ in 0..COUNTED_PASSES {
        for (arena, verdicts) in arenas.iter_mut().zip(&mut verdicts) {
            arena.pass(&mut counters, verdicts);
        }
    }
    COUNTING.with(|c| c.set(false));
    let (allocations, frees) = (ALLOCATIONS.with(Cell::get), FREES.with(Cell::get));

    let processed = u64::try_from(COUNTED_PASSES * frames).expect("fits");
    println!(
        "{processed} frames in {COUNTED_PASSES} passes: {allocations} allocations, {frees} frees; {counters:?}"
    );
    assert_eq!(allocations, 0, "allocation calls during steady-state processing");
    assert_eq!(frees, 0, "frees during steady-state processing");
    // The loop did the real work: every frame was seen, most were forwarded, and each pass
    // decided exactly what the warm-up passes decided.
    assert_eq!(counters.received, processed);
    assert!(counters.forwarded > processed / 2, "most golden frames are forwarded: {counters:?}");
    assert!(counters.kernel > 0 && counters.dropped.iter().sum::<u64>() > 0, "{counters:?}");
    let per_pass = |c: u64, passes: usize| c / u64::try_from(passes).expect("fits");
    assert_eq!(per_pass(counters.forwarded, COUNTED_PASSES), per_pass(warm.forwarded, WARM_UP_PASSES));
    assert_eq!(per_pass(counters.kernel, COUNTED_PASSES), per_pass(warm.kernel, WARM_UP_PASSES));
}
