//! Offline mode: the pipeline over a capture file, the test path that needs no NIC (like GLB's
//! `glb-director-pcap`, but with real classification and real output frames).
//!
//! Forwarded frames go to the TX capture and kernel-path frames, unchanged, to the kernel
//! capture, each in input order with the input timestamps; drops are only counted.

use crate::pipeline::{BindMatcher, Counters, Frame, MAX_HEADROOM, Pipeline, Verdict};
use forwarding_table::LoadedTable;
use pcap_file::DataLink;
use pcap_file::pcap::{PcapHeader, PcapPacket, PcapReader, PcapWriter};
use std::io::{Read, Write};
use thiserror::Error;

/// Why a pcap run failed.
#[derive(Debug, Error)]
pub enum PcapError {
    /// The input capture is unreadable.
    #[error("cannot read the input capture")]
    Read(#[source] pcap_file::PcapError),
    /// An output capture cannot be written.
    #[error("cannot write the {which} capture")]
    Write {
        /// "TX" or "kernel".
        which: &'static str,
        /// The cause.
        #[source]
        source: pcap_file::PcapError,
    },
    /// The input is not Ethernet.
    #[error("the input capture's link type is {0:?}, expected Ethernet")]
    LinkType(DataLink),
}

/// Largest frame handled (jumbo); longer captured frames are cut, and then dropped as truncated.
const MAX_FRAME: usize = 9216;

/// Runs every frame of `input` through `pipeline` against `table`, choosing tables with
/// `matcher`, and writes TX and (optionally) kernel captures.
///
/// # Errors
/// The input cannot be read or an output cannot be written.
pub fn run<R: Read, W: Write, K: Write>(
    pipeline: &Pipeline,
    table: &LoadedTable,
    matcher: &impl BindMatcher,
    input: R,
    tx: W,
    kernel: Option<K>,
) -> Result<Counters, PcapError> {
    let mut reader = PcapReader::new(input).map_err(PcapError::Read)?;
    let link = reader.header().datalink;
    if link != DataLink::ETHERNET {
        return Err(PcapError::LinkType(link));
    }
    let header = PcapHeader { datalink: DataLink::ETHERNET, ..PcapHeader::default() };
    let write_err = |which| move |source| PcapError::Write { which, source };
    let mut tx = PcapWriter::with_header(tx, header).map_err(write_err("TX"))?;
    let mut kernel =
        kernel.map(|k| PcapWriter::with_header(k, header)).transpose().map_err(write_err("kernel"))?;
    let mut counters = Counters::default();
    let mut buf = vec![0u8; MAX_HEADROOM + MAX_FRAME];
    while let Some(packet) = reader.next_packet() {
        let packet = packet.map_err(PcapError::Read)?;
        let len = packet.data.len().min(MAX_FRAME);
        buf[MAX_HEADROOM..MAX_HEADROOM + len].copy_from_slice(&packet.data[..len]);
        let mut frame = Frame::new(&mut buf, MAX_HEADROOM, len);
        let (verdict, _) = pipeline.process_with(table, matcher, &mut frame);
        counters.record(verdict);
        let record = |data: &[u8]| {
            let orig_len = u32::try_from(data.len()).unwrap_or(u32::MAX);
            PcapPacket::new(packet.timestamp, orig_len, data).into_owned()
        };
        match (verdict, kernel.as_mut()) {
            (Verdict::Forward, _) => {
                tx.write_packet(&record(frame.data())).map_err(write_err("TX"))?;
            }
            (Verdict::Kernel, Some(kernel)) => {
                kernel.write_packet(&record(&packet.data)).map_err(write_err("kernel"))?;
            }
            _ => {}
        }
    }
    Ok(counters)
}
