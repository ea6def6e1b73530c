//! The director's packet pipeline, sans I/O: frames in, verdicts and rewritten frames out.
//!
//! Per frame: classify (which table's bind, §7.1) → extract the flow (§7.2) → SipHash the
//! chosen fields with the table's key → row → primary, secondary (and the migration pair with
//! `alt_hash_fields`) → GUE-encapsulate in place (§7.4). Every frame gets its own verdict and
//! counter; a bad frame never affects the rest of its burst.
//!
//! Nothing here allocates, locks, logs or panics on input: the I/O layer lends buffers, the
//! table is borrowed for the burst, and counters are plain integers the worker owns.

mod encap;
mod flow;
mod verdict;

pub use encap::{MAX_HEADROOM, TunnelEndpoint, overhead};
pub use flow::{
    BindMatcher, Classification, Classified, ClassifyOptions, Family, Flow, ForcedTable, classify,
};
pub use verdict::{Counters, DropReason, Verdict};

use forwarding_table::{HashFields, LoadedTable, TableFile};
use glb_wire::tunnel::Template;

/// A frame lent by an I/O backend: `buf[start..start + len]` is the frame, and the bytes before
/// `start` are headroom the tunnel headers can use.
#[derive(Debug)]
pub struct Frame<'a> {
    buf: &'a mut [u8],
    start: usize,
    len: usize,
}

impl<'a> Frame<'a> {
    /// Wraps a buffer; the frame is clamped to the buffer.
    pub fn new(buf: &'a mut [u8], start: usize, len: usize) -> Self {
        let start = start.min(buf.len());
        let len = len.min(buf.len() - start);
        Self { buf, start, len }
    }

    /// The frame's bytes.
    #[must_use]
    pub fn data(&self) -> &[u8] {
        &self.buf[self.start..self.start + self.len]
    }

    /// Offset of the frame in the buffer (moves back when the frame is encapsulated).
    #[must_use]
    pub fn start(&self) -> usize {
        self.start
    }

    /// Length of the frame.
    #[must_use]
    pub fn len(&self) -> usize {
        self.len
    }

    /// Whether the frame is empty.
    #[must_use]
    pub fn is_empty(&self) -> bool {
        self.len == 0
    }
}

/// What the pipeline needs from director.conf.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub struct PipelineConfig {
    /// Our end of the tunnel.
    pub endpoint: TunnelEndpoint,
    /// Fields of the main hash.
    pub hash_fields: HashFields,
    /// Fields of the migration hash, if configured.
    pub alt_hash_fields: Option<HashFields>,
    /// Classification switches.
    pub classify: ClassifyOptions,
}

/// The per-packet path, configured once.
#[derive(Debug, Clone, Copy)]
pub struct Pipeline {
    config: PipelineConfig,
    /// `config.endpoint`'s tunnel header, prepared once.
    template: Template,
}

/// A forwarded frame's routing facts, for tools that report them (pcap mode, tests).
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub struct Routed {
    /// Table chosen.
    pub table: usize,
    /// Main packet hash.
    pub pkt_hash: u64,
    /// Flow hint mixed into the UDP source port.
    pub flow_hint: u16,
}

impl Pipeline {
    /// A pipeline for `config`.
    #[must_use]
    pub fn new(config: PipelineConfig) -> Self {
        Self { config, template: config.endpoint.template() }
    }

    /// Processes one frame against `table`, encapsulating it in place when forwarded.
    pub fn process(&self, table: &LoadedTable, frame: &mut Frame<'_>) -> (Verdict, Option<Routed>) {
        self.process_with(table, table.classifier(), frame)
    }

    /// [`Self::process`] with another way of choosing the table (e.g. [`ForcedTable`]).
    pub fn process_with(
        &self,
        table: &LoadedTable,
        matcher: &impl BindMatcher,
        frame: &mut Frame<'_>,
    ) -> (Verdict, Option<Routed>) {
        self.process_in(&table.file(), matcher, frame)
    }

    /// [`Self::process_with`] on a table file already viewed (once per burst).
    #[inline(always)]
    fn process_in(
        &self,
        file: &TableFile<'_>,
        matcher: &impl BindMatcher,
        frame: &mut Frame<'_>,
    ) -> (Verdict, Option<Routed>) {
        self.process_fields(file, matcher, frame, self.config.hash_fields, self.config.alt_hash_fields)
    }

    /// [`Self::process_in`] with the hash fields as arguments: called with constants, the hash
    /// input is assembled at compile-time offsets and only the fields chosen are read.
    #[inline(always)]
    fn process_fields(
        &self,
        file: &TableFile<'_>,
        matcher: &impl BindMatcher,
        frame: &mut Frame<'_>,
        fields: HashFields,
        alt_fields: Option<HashFields>,
    ) -> (Verdict, Option<Routed>) {
        let classified = match classify(frame.data(), matcher, self.config.classify) {
            Classification::Matched(c) => c,
            Classification::Kernel => return (Verdict::Kernel, None),
            Classification::Drop(reason) => return (Verdict::Drop(reason), None),
        };
        self.forward(file, frame, &classified, fields, alt_fields)
    }

    /// Hashes and encapsulates a classified frame.
    #[inline(always)]
    fn forward(
        &self,
        file: &TableFile<'_>,
        frame: &mut Frame<'_>,
        classified: &Classified,
        fields: HashFields,
        alt_fields: Option<HashFields>,
    ) -> (Verdict, Option<Routed>) {
        let Some(view) = file.table(classified.table) else {
            return (Verdict::Drop(DropReason::Truncated), None);
        };
        // The input is built from the integer fields and hashed by whole words
        // (`siphash_short`): `FlowKey`'s `IpAddr`s and the general byte-stream hasher cost
        // twice the instructions.
        let pkt_hash = classified.hash(view.hash_key(), fields);
        let alt_hash = alt_fields.map(|alt| classified.hash(view.hash_key(), alt));
        let selection = view.select_hashed(pkt_hash, alt_hash);
        let hops = selection.hops.as_slice();
        match encap::encapsulate(frame.buf, frame.start, classified, pkt_hash, hops, &self.template) {
            Ok((start, len)) => {
                frame.start = start;
                frame.len = len;
                let routed = Routed { table: classified.table, pkt_hash, flow_hint: classified.flow_hint };
                (Verdict::Forward, Some(routed))
            }
            Err(reason) => (Verdict::Drop(reason), None),
        }
    }

    /// Processes a burst: one verdict per frame into `verdicts` (which must be at least as long
    /// as `frames`; extra frames are left untouched), counted in `counters`.
    pub fn process_burst(
        &self,
        table: &LoadedTable,
        frames: &mut [Frame<'_>],
        verdicts: &mut [Verdict],
        counters: &mut Counters,
    ) {
        self.process_burst_with(table, table.classifier(), frames, verdicts, counters);
    }

    /// [`Self::process_burst`] with another way of choosing the table.
    ///
    /// Frame by frame, the table file viewed once. Two ways of overlapping the one likely cache
    /// miss per packet (the row read) with other work both measured slower on the bench
    /// machine, A/B in one process: staging the burst (classify all, hash all, read all rows,
    /// encapsulate all) by 10–30 %, its per-stage arrays costing more than the overlap saved;
    /// and pipelining by one frame (read frame *i*'s row, then encapsulate frame *i − 1*) by
    /// about 10 %.
    pub fn process_burst_with(
        &self,
        table: &LoadedTable,
        matcher: &impl BindMatcher,
        frames: &mut [Frame<'_>],
        verdicts: &mut [Verdict],
        counters: &mut Counters,
    ) {
        let file = table.file();
        let (fields, alt_fields) = (self.config.hash_fields, self.config.alt_hash_fields);
        // GLB's default fields get their own copy of the loop, with the fields as constants.
        if fields == HashFields::default() && alt_fields.is_none() {
            Self::burst_loop(frames, verdicts, counters, |frame| {
                self.process_fields(&file, matcher, frame, HashFields::default(), None).0
            });
        } else {
            Self::burst_loop(frames, verdicts, counters, |frame| {
                self.process_fields(&file, matcher, frame, fields, alt_fields).0
            });
        }
    }

    /// Runs `process` over the burst, counting verdicts in a local copy of `counters` (kept in
    /// registers rather than re-stored per frame).
    #[inline(always)]
    fn burst_loop(
        frames: &mut [Frame<'_>],
        verdicts: &mut [Verdict],
        counters: &mut Counters,
        mut process: impl FnMut(&mut Frame<'_>) -> Verdict,
    ) {
        let mut local = *counters;
        for (frame, verdict) in frames.iter_mut().zip(verdicts.iter_mut()) {
            *verdict = process(frame);
            local.record(*verdict);
        }
        *counters = local;
    }
}
