//! Source JSON → validated domain types ("parse, don't validate").
//!
//! GLB's CLI silently mangles a lot of input (non-integer ports become 0, a bad CIDR suffix becomes
//! `/0`, non-hex key characters repeat the previous byte, …). Here every such input is an error
//! that names its JSON path and the expected form (`../shared/spec/decisions.md` §3), and *all*
//! problems of a file are reported in one pass, in file order, so an operator fixes them in one go.
//!
//! The walk is done over a [`serde_json::Value`] rather than derived structs because derived
//! deserialisation stops at the first problem and cannot tell "missing" from "wrong type" from
//! "out of range" in the words an operator needs.
//!
//! The types produced ([`Config`], [`Table`], [`Bind`], [`Backend`], [`Prefix`], [`PortRange`]) can
//! only be built through checked constructors, so anything holding a `Config` holds a table that
//! builds.

use crate::hash::Key;
use crate::{MAX_BACKENDS, MAX_BINDS};
use serde_json::{Map, Value};
use std::fmt;
use std::net::{IpAddr, Ipv4Addr, Ipv6Addr};
use thiserror::Error;

/// One problem (or warning) found in a forwarding-table JSON file.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct Diagnostic {
    /// Where, e.g. `tables[1].binds[0].port_end`.
    pub path: String,
    /// What was wrong and what is expected.
    pub message: String,
}

impl Diagnostic {
    fn new(path: impl Into<String>, message: impl Into<String>) -> Self {
        Self { path: path.into(), message: message.into() }
    }

    fn under(mut self, prefix: &str) -> Self {
        self.path = format!("{prefix}.{}", self.path);
        self
    }
}

impl fmt::Display for Diagnostic {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        write!(f, "{}: {}", self.path, self.message)
    }
}

/// Why a forwarding-table JSON file cannot be built.
#[derive(Debug, Error)]
pub enum ConfigError {
    /// The text is not JSON at all.
    #[error("invalid JSON at line {line}, column {column}: {message}")]
    Syntax {
        /// 1-based line of the first syntax error.
        line: usize,
        /// 1-based column of the first syntax error.
        column: usize,
        /// serde_json's description of the problem.
        message: String,
    },
    /// The JSON is well-formed but describes an invalid table.
    #[error("{} problem(s) in the forwarding table: {}", errors.len(), Joined(errors))]
    Invalid {
        /// Every error, in file order.
        errors: Vec<Diagnostic>,
        /// Warnings found on the way (also reported for valid files, see [`Validated`]).
        warnings: Vec<Diagnostic>,
    },
}

struct Joined<'a>(&'a [Diagnostic]);

impl fmt::Display for Joined<'_> {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        for (i, d) in self.0.iter().enumerate() {
            if i > 0 {
                f.write_str("; ")?;
            }
            write!(f, "{d}")?;
        }
        Ok(())
    }
}

/// A valid configuration plus the warnings its source produced.
#[derive(Debug, Clone)]
pub struct Validated {
    /// The tables, ready to build.
    pub config: Config,
    /// Input that was accepted but deserves the operator's attention.
    pub warnings: Vec<Diagnostic>,
}

/// Parses and validates forwarding-table JSON text.
///
/// # Errors
/// [`ConfigError::Syntax`] for text that is not JSON, [`ConfigError::Invalid`] with every problem
/// otherwise.
pub fn parse(json: &str) -> Result<Validated, ConfigError> {
    let value: Value = serde_json::from_str(json).map_err(|e| ConfigError::Syntax {
        line: e.line(),
        column: e.column(),
        message: strip_position(&e.to_string()),
    })?;
    validate(&value)
}

fn strip_position(message: &str) -> String {
    match message.rfind(" at line ") {
        Some(i) => message[..i].to_owned(),
        None => message.to_owned(),
    }
}

/// Validates an already parsed JSON document.
///
/// # Errors
/// [`ConfigError::Invalid`] with every problem found, in file order.
pub fn validate(value: &Value) -> Result<Validated, ConfigError> {
    let mut walker = Walker::default();
    let config = walker.document(value);
    match config {
        Some(config) if walker.errors.is_empty() => Ok(Validated { config, warnings: walker.warnings }),
        _ => Err(ConfigError::Invalid { errors: walker.errors, warnings: walker.warnings }),
    }
}

// ---------------------------------------------------------------------------------------------
// Domain types
// ---------------------------------------------------------------------------------------------

/// All tables of one forwarding-table file: at least one, with no two binds of different tables
/// claiming the same traffic.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct Config {
    tables: Vec<Table>,
}

impl Config {
    /// Checks the cross-table rules and wraps the tables.
    ///
    /// # Errors
    /// Every problem, with paths starting at `tables[i]`: no tables, or binds of two tables with
    /// the same protocol, overlapping prefixes and intersecting port ranges (GLB leaves the
    /// winner to DPDK ACL internals, so such a file would route unpredictably).
    pub fn new(tables: Vec<Table>) -> Result<Self, Vec<Diagnostic>> {
        let mut errors = Vec::new();
        if tables.is_empty() {
            errors.push(Diagnostic::new("tables", "expected at least one table, found an empty array"));
        }
        for (j, later) in tables.iter().enumerate() {
            for (b, bind) in later.binds.iter().enumerate() {
                let clash = tables[..j].iter().enumerate().find_map(|(i, earlier)| {
                    let a = earlier.binds.iter().position(|other| other.overlaps(bind))?;
                    Some((i, a))
                });
                if let Some((i, a)) = clash {
                    errors.push(Diagnostic::new(
                        format!("tables[{j}].binds[{b}]"),
                        format!(
                            "{bind} overlaps tables[{i}].binds[{a}] ({}) of another table; expected \
                             binds of different tables to differ in protocol, prefix or port range",
                            tables[i].binds[a]
                        ),
                    ));
                }
            }
        }
        if errors.is_empty() { Ok(Self { tables }) } else { Err(errors) }
    }

    /// The tables, in file order (the order of the binary's table blocks).
    #[must_use]
    pub fn tables(&self) -> &[Table] {
        &self.tables
    }
}

/// One forwarding table: its keys, binds and backends.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct Table {
    name: Option<String>,
    hash_key: Key,
    seed: Key,
    binds: Vec<Bind>,
    backends: Vec<Backend>,
}

impl Table {
    /// Checks the table-level rules.
    ///
    /// # Errors
    /// Every problem, with paths relative to the table (`binds`, `backends[3].ip`): no binds or
    /// backends, more than 256 of either, a backend address listed twice, or no backend that is
    /// not `inactive` (no row could name a primary).
    pub fn new(
        name: Option<String>,
        hash_key: Key,
        seed: Key,
        binds: Vec<Bind>,
        backends: Vec<Backend>,
    ) -> Result<Self, Vec<Diagnostic>> {
        let mut errors = Vec::new();
        check_count(&mut errors, "binds", "bind", binds.len(), MAX_BINDS);
        check_count(&mut errors, "backends", "backend", backends.len(), MAX_BACKENDS);
        for (j, backend) in backends.iter().enumerate() {
            if let Some(i) = backends[..j].iter().position(|b| b.address == backend.address) {
                errors.push(Diagnostic::new(
                    format!("backends[{j}].ip"),
                    format!(
                        "{} is already listed as backends[{i}]; expected each backend once per table",
                        backend.address
                    ),
                ));
            }
        }
        if !backends.is_empty() && !backends.iter().any(|b| b.state.is_candidate()) {
            errors.push(Diagnostic::new(
                "backends",
                "every backend is inactive; expected at least one backend that is active, filling \
                 or draining, so that rows have a primary",
            ));
        }
        if errors.is_empty() { Ok(Self { name, hash_key, seed, binds, backends }) } else { Err(errors) }
    }

    /// The table's `name` (used by the health checker; not stored in the binary).
    #[must_use]
    pub fn name(&self) -> Option<&str> {
        self.name.as_deref()
    }

    /// The per-packet SipHash key, copied into the binary.
    #[must_use]
    pub fn hash_key(&self) -> &Key {
        &self.hash_key
    }

    /// The SipHash key used only to build rows; not stored in the binary.
    #[must_use]
    pub fn seed(&self) -> &Key {
        &self.seed
    }

    /// Binds, in file order (1..=256).
    #[must_use]
    pub fn binds(&self) -> &[Bind] {
        &self.binds
    }

    /// Backends, in file order (1..=256, distinct addresses); the index is the binary slot.
    #[must_use]
    pub fn backends(&self) -> &[Backend] {
        &self.backends
    }
}

fn check_count(errors: &mut Vec<Diagnostic>, key: &str, what: &str, len: usize, max: usize) {
    if len == 0 {
        errors.push(Diagnostic::new(key, format!("expected at least one {what}, found an empty array")));
    } else if len > max {
        errors.push(Diagnostic::new(
            key,
            format!("expected at most {max} {what}s (the binary table's limit), found {len}"),
        ));
    }
}

/// A VIP (or VIP range) plus protocol and port range that belongs to a table.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub struct Bind {
    /// Destination prefix, host bits cleared.
    pub prefix: Prefix,
    /// Transport protocol.
    pub proto: Protocol,
    /// Inclusive destination port range.
    pub ports: PortRange,
}

impl Bind {
    /// Whether `self` and `other` could both match one packet.
    #[must_use]
    pub fn overlaps(&self, other: &Bind) -> bool {
        self.proto == other.proto
            && self.prefix.overlaps(&other.prefix)
            && self.ports.intersects(&other.ports)
    }
}

impl fmt::Display for Bind {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        write!(f, "{} {} ports {}", self.proto, self.prefix, self.ports)
    }
}

/// Transport protocols a bind can name in JSON.
#[derive(Debug, Clone, Copy, PartialEq, Eq, Hash)]
pub enum Protocol {
    /// `"tcp"`, IP protocol 6.
    Tcp,
    /// `"udp"`, IP protocol 17.
    Udp,
}

impl Protocol {
    /// The IP protocol number stored in the binary.
    #[must_use]
    pub fn number(self) -> u8 {
        match self {
            Self::Tcp => 6,
            Self::Udp => 17,
        }
    }
}

impl fmt::Display for Protocol {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        f.write_str(match self {
            Self::Tcp => "tcp",
            Self::Udp => "udp",
        })
    }
}

/// An address prefix with its host bits cleared.
#[derive(Debug, Clone, Copy, PartialEq, Eq, Hash)]
pub struct Prefix {
    addr: IpAddr,
    len: u8,
}

impl Prefix {
    /// Builds the prefix `addr/len`, clearing host bits. Returns `None` if `len` exceeds the
    /// family's width (32 or 128).
    #[must_use]
    pub fn new(addr: IpAddr, len: u8) -> Option<Self> {
        (len <= max_prefix_len(addr)).then(|| Self { addr: mask(addr, len), len })
    }

    /// The network address (host bits clear).
    #[must_use]
    pub fn addr(&self) -> IpAddr {
        self.addr
    }

    /// The prefix length (0..=32 or 0..=128).
    #[must_use]
    pub fn prefix_len(&self) -> u8 {
        self.len
    }

    /// Whether the two prefixes share at least one address.
    #[must_use]
    pub fn overlaps(&self, other: &Prefix) -> bool {
        let len = self.len.min(other.len);
        self.addr.is_ipv4() == other.addr.is_ipv4() && mask(self.addr, len) == mask(other.addr, len)
    }
}

impl fmt::Display for Prefix {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        write!(f, "{}/{}", self.addr, self.len)
    }
}

/// 32 for IPv4, 128 for IPv6.
#[must_use]
pub fn max_prefix_len(addr: IpAddr) -> u8 {
    if addr.is_ipv4() { 32 } else { 128 }
}

/// `addr` with every bit past the first `len` cleared (`len` is capped at the family's width).
#[must_use]
pub fn mask(addr: IpAddr, len: u8) -> IpAddr {
    match addr {
        IpAddr::V4(a) => {
            let keep = u32::MAX.checked_shl(32 - u32::from(len.min(32))).unwrap_or(0);
            IpAddr::V4(Ipv4Addr::from(u32::from(a) & keep))
        }
        IpAddr::V6(a) => {
            let keep = u128::MAX.checked_shl(128 - u32::from(len.min(128))).unwrap_or(0);
            IpAddr::V6(Ipv6Addr::from(u128::from(a) & keep))
        }
    }
}

/// An inclusive port range with `start <= end`.
#[derive(Debug, Clone, Copy, PartialEq, Eq, Hash)]
pub struct PortRange {
    start: u16,
    end: u16,
}

impl PortRange {
    /// `start..=end`; `None` when reversed (GLB's ACL would match only the two endpoints).
    #[must_use]
    pub fn new(start: u16, end: u16) -> Option<Self> {
        (start <= end).then_some(Self { start, end })
    }

    /// A single port.
    #[must_use]
    pub fn single(port: u16) -> Self {
        Self { start: port, end: port }
    }

    /// First port.
    #[must_use]
    pub fn start(&self) -> u16 {
        self.start
    }

    /// Last port (inclusive).
    #[must_use]
    pub fn end(&self) -> u16 {
        self.end
    }

    /// Whether the ranges share a port.
    #[must_use]
    pub fn intersects(&self, other: &PortRange) -> bool {
        self.start <= other.end && other.start <= self.end
    }
}

impl fmt::Display for PortRange {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        write!(f, "{}-{}", self.start, self.end)
    }
}

/// A proxy that rows can name.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub struct Backend {
    /// Tunnel endpoint (IPv4 only: the GUE outer header is IPv4).
    pub address: Ipv4Addr,
    /// Administrative state.
    pub state: BackendState,
    /// Result of health checking.
    pub healthy: bool,
}

impl Backend {
    /// Whether a row may send new traffic to it: active or filling, and healthy
    /// (decisions.md §2).
    #[must_use]
    pub fn is_good(&self) -> bool {
        self.healthy && matches!(self.state, BackendState::Active | BackendState::Filling)
    }
}

/// A backend's administrative state (GLB's names).
#[derive(Debug, Clone, Copy, PartialEq, Eq, Hash)]
pub enum BackendState {
    /// Taking new connections while warming up.
    Filling,
    /// In service.
    Active,
    /// Being emptied: keeps its connections via second chance, gets no new ones where avoidable.
    Draining,
    /// Out of rotation: never ranked, but keeps its slot.
    Inactive,
}

impl BackendState {
    /// All states, with their JSON names.
    pub const ALL: [(&'static str, BackendState); 4] = [
        ("active", Self::Active),
        ("filling", Self::Filling),
        ("draining", Self::Draining),
        ("inactive", Self::Inactive),
    ];

    /// The JSON name.
    #[must_use]
    pub fn name(self) -> &'static str {
        match self {
            Self::Filling => "filling",
            Self::Active => "active",
            Self::Draining => "draining",
            Self::Inactive => "inactive",
        }
    }

    /// Whether rendezvous hashing ranks this backend (everything but `inactive`).
    #[must_use]
    pub fn is_candidate(self) -> bool {
        self != Self::Inactive
    }
}

// ---------------------------------------------------------------------------------------------
// The JSON walk
// ---------------------------------------------------------------------------------------------

const TOP_KEYS: &[&str] = &["tables", "healthchecks"];
const TABLE_KEYS: &[&str] = &["name", "hash_key", "seed", "binds", "backends"];
const BIND_KEYS: &[&str] = &["ip", "proto", "port", "port_start", "port_end"];
const BACKEND_KEYS: &[&str] = &["ip", "state", "healthy", "healthchecks"];

#[derive(Default)]
struct Walker {
    errors: Vec<Diagnostic>,
    warnings: Vec<Diagnostic>,
}

impl Walker {
    fn error(&mut self, path: impl Into<String>, message: impl Into<String>) {
        self.errors.push(Diagnostic::new(path, message));
    }

    fn warn(&mut self, path: impl Into<String>, message: impl Into<String>) {
        self.warnings.push(Diagnostic::new(path, message));
    }

    fn document(&mut self, value: &Value) -> Option<Config> {
        let Some(top) = value.as_object() else {
            self.error(
                "(top level)",
                format!("expected an object with a \"tables\" array, found {}", describe(value)),
            );
            return None;
        };
        self.typos("", top, TOP_KEYS);
        let Some(tables) = top.get("tables") else {
            self.error("tables", "missing; expected an array of forwarding tables");
            return None;
        };
        let Some(tables) = tables.as_array() else {
            self.error("tables", format!("expected an array of tables, found {}", describe(tables)));
            return None;
        };
        let tables: Vec<Option<Table>> =
            tables.iter().enumerate().map(|(i, t)| self.table(&format!("tables[{i}]"), t)).collect();
        let tables: Option<Vec<Table>> = tables.into_iter().collect();
        // Cross-table checks only make sense once every table is valid on its own.
        match Config::new(tables.unwrap_or_default()) {
            Ok(config) if self.errors.is_empty() => Some(config),
            Ok(_) => None,
            Err(errors) => {
                if self.errors.is_empty() {
                    self.errors.extend(errors);
                }
                None
            }
        }
    }

    fn table(&mut self, path: &str, value: &Value) -> Option<Table> {
        let Some(obj) = value.as_object() else {
            self.error(path, format!("expected a table object, found {}", describe(value)));
            return None;
        };
        self.typos(path, obj, TABLE_KEYS);
        let name = match obj.get("name") {
            None => None,
            Some(Value::String(s)) => Some(s.clone()),
            Some(other) => {
                self.error(format!("{path}.name"), format!("expected a string, found {}", describe(other)));
                None
            }
        };
        let hash_key = self.key(path, obj, "hash_key");
        let seed = self.key(path, obj, "seed");
        let binds = self.list(path, obj, "binds", "bind", Self::bind);
        let backends = self.list(path, obj, "backends", "backend", Self::backend);
        let (hash_key, seed, binds, backends) = (hash_key?, seed?, binds?, backends?);
        match Table::new(name, hash_key, seed, binds, backends) {
            Ok(table) => Some(table),
            Err(errors) => {
                self.errors.extend(errors.into_iter().map(|d| d.under(path)));
                None
            }
        }
    }

    /// Walks every element of an array member; `None` if anything in it was invalid.
    fn list<T>(
        &mut self,
        path: &str,
        obj: &Map<String, Value>,
        key: &str,
        what: &str,
        item: fn(&mut Self, &str, &Value) -> Option<T>,
    ) -> Option<Vec<T>> {
        let path = format!("{path}.{key}");
        let Some(value) = obj.get(key) else {
            self.error(path, format!("missing; expected an array of {what} objects"));
            return None;
        };
        let Some(items) = value.as_array() else {
            self.error(path, format!("expected an array of {what} objects, found {}", describe(value)));
            return None;
        };
        let parsed: Vec<Option<T>> =
            items.iter().enumerate().map(|(i, v)| item(self, &format!("{path}[{i}]"), v)).collect();
        parsed.into_iter().collect()
    }

    fn key(&mut self, path: &str, obj: &Map<String, Value>, key: &str) -> Option<Key> {
        let path = format!("{path}.{key}");
        let expected = "expected 32 hex digits (a 16-byte SipHash key)";
        let text = match obj.get(key) {
            None => {
                self.error(path, format!("missing; {expected}"));
                return None;
            }
            Some(Value::String(s)) => s,
            Some(other) => {
                self.error(path, format!("{expected}, found {}", describe(other)));
                return None;
            }
        };
        if let Some((pos, c)) = text.char_indices().find(|(_, c)| !c.is_ascii_hexdigit()) {
            self.error(path, format!("{expected}, found {c:?} at position {pos}"));
            return None;
        }
        let Ok(bytes) = <[u8; 32]>::try_from(text.as_bytes()) else {
            self.error(path, format!("{expected}, found {} digits", text.len()));
            return None;
        };
        let mut out = [0u8; 16];
        for (byte, pair) in out.iter_mut().zip(bytes.chunks_exact(2)) {
            *byte = (hex_value(pair[0]) << 4) | hex_value(pair[1]);
        }
        Some(out)
    }

    fn bind(&mut self, path: &str, value: &Value) -> Option<Bind> {
        let Some(obj) = value.as_object() else {
            self.error(path, format!("expected a bind object, found {}", describe(value)));
            return None;
        };
        self.typos(path, obj, BIND_KEYS);
        let prefix = self.string(path, obj, "ip", "an IP address, optionally with /prefix-length");
        let prefix = prefix.and_then(|text| self.prefix(&format!("{path}.ip"), text));
        let proto = match self.string(path, obj, "proto", "\"tcp\" or \"udp\"") {
            Some("tcp") => Some(Protocol::Tcp),
            Some("udp") => Some(Protocol::Udp),
            Some(other) => {
                self.error(
                    format!("{path}.proto"),
                    format!("expected \"tcp\" or \"udp\" (lower case), found {other:?}"),
                );
                None
            }
            None => None,
        };
        let ports = self.ports(path, obj);
        Some(Bind { prefix: prefix?, proto: proto?, ports: ports? })
    }

    fn prefix(&mut self, path: &str, text: &str) -> Option<Prefix> {
        let (addr_text, len_text) = match text.split_once('/') {
            Some((a, l)) => (a, Some(l)),
            None => (text, None),
        };
        let Ok(addr) = addr_text.parse::<IpAddr>() else {
            self.error(
                path,
                format!("expected an IPv4 or IPv6 address, optionally with /prefix-length, found {text:?}"),
            );
            return None;
        };
        let max = max_prefix_len(addr);
        let len = match len_text {
            None => max,
            Some(l) => match l.parse::<u8>() {
                Ok(len) if len <= max && l.bytes().all(|b| b.is_ascii_digit()) => len,
                _ => {
                    self.error(
                        path,
                        format!("expected a prefix length 0..={max} after '/', found {l:?} in {text:?}"),
                    );
                    return None;
                }
            },
        };
        let prefix = Prefix::new(addr, len)?;
        if prefix.addr() != addr {
            self.warn(
                path,
                format!("host bits are set in {text:?}; using {prefix} (the director ignores host bits)"),
            );
        }
        Some(prefix)
    }

    fn ports(&mut self, path: &str, obj: &Map<String, Value>) -> Option<PortRange> {
        if obj.contains_key("port") {
            let port = self.port(path, obj, "port");
            for ignored in ["port_start", "port_end"] {
                if obj.contains_key(ignored) {
                    self.warn(format!("{path}.{ignored}"), "ignored because \"port\" is set (as GLB does)");
                }
            }
            return port.map(PortRange::single);
        }
        if !obj.contains_key("port_start") && !obj.contains_key("port_end") {
            self.error(path, "missing port; expected \"port\", or \"port_start\" and \"port_end\"");
            return None;
        }
        let start = self.port(path, obj, "port_start");
        let end = self.port(path, obj, "port_end");
        let (start, end) = (start?, end?);
        let range = PortRange::new(start, end);
        if range.is_none() {
            self.error(
                format!("{path}.port_end"),
                format!("port_end {end} is below port_start {start}; expected port_start <= port_end"),
            );
        }
        range
    }

    fn port(&mut self, path: &str, obj: &Map<String, Value>, key: &str) -> Option<u16> {
        let path = format!("{path}.{key}");
        let expected = "expected an integer in 0..=65535";
        match obj.get(key) {
            None => self.error(path, format!("missing; {expected}")),
            Some(v) => match v.as_u64().and_then(|n| u16::try_from(n).ok()) {
                Some(port) => return Some(port),
                None => self.error(path, format!("{expected}, found {}", describe(v))),
            },
        }
        None
    }

    fn backend(&mut self, path: &str, value: &Value) -> Option<Backend> {
        let Some(obj) = value.as_object() else {
            self.error(path, format!("expected a backend object, found {}", describe(value)));
            return None;
        };
        self.typos(path, obj, BACKEND_KEYS);
        let address =
            self.string(path, obj, "ip", "an IPv4 address").and_then(|text| match text.parse::<IpAddr>() {
                Ok(IpAddr::V4(a)) => Some(a),
                Ok(IpAddr::V6(_)) => {
                    self.error(
                        format!("{path}.ip"),
                        format!(
                            "expected an IPv4 address, found the IPv6 address {text:?} (the GUE tunnel is \
                             IPv4; GLB would silently use its first 4 bytes)"
                        ),
                    );
                    None
                }
                Err(_) => {
                    self.error(format!("{path}.ip"), format!("expected an IPv4 address, found {text:?}"));
                    None
                }
            });
        let state =
            self.string(path, obj, "state", "one of \"active\", \"filling\", \"draining\", \"inactive\"");
        let state = state.and_then(|text| {
            let found = BackendState::ALL.iter().find(|(name, _)| *name == text).map(|&(_, s)| s);
            if found.is_none() {
                self.error(
                    format!("{path}.state"),
                    format!("expected one of \"active\", \"filling\", \"draining\", \"inactive\" (lower case), found {text:?}"),
                );
            }
            found
        });
        let healthy = match obj.get("healthy") {
            None => {
                self.warn(format!("{path}.healthy"), "missing; read as false (unhealthy), as GLB does");
                Some(false)
            }
            Some(Value::Bool(b)) => Some(*b),
            Some(other) => {
                self.error(
                    format!("{path}.healthy"),
                    format!("expected true or false, found {}", describe(other)),
                );
                None
            }
        };
        Some(Backend { address: address?, state: state?, healthy: healthy? })
    }

    /// A required string member; reports missing/wrong type with the expected form.
    fn string<'v>(
        &mut self,
        path: &str,
        obj: &'v Map<String, Value>,
        key: &str,
        expected: &str,
    ) -> Option<&'v str> {
        match obj.get(key) {
            Some(Value::String(s)) => Some(s),
            None => {
                self.error(format!("{path}.{key}"), format!("missing; expected {expected}"));
                None
            }
            Some(other) => {
                self.error(
                    format!("{path}.{key}"),
                    format!("expected {expected}, found {}", describe(other)),
                );
                None
            }
        }
    }

    fn typos(&mut self, path: &str, obj: &Map<String, Value>, known: &[&str]) {
        for key in obj.keys().filter(|k| !known.contains(&k.as_str())) {
            if let Some(meant) = known.iter().find(|k| looks_like_typo(key, k)) {
                let at = if path.is_empty() { key.clone() } else { format!("{path}.{key}") };
                self.warn(at, format!("unknown key, ignored; did you mean {meant:?}?"));
            }
        }
    }
}

fn hex_value(digit: u8) -> u8 {
    match digit {
        b'0'..=b'9' => digit - b'0',
        b'a'..=b'f' => digit - b'a' + 10,
        _ => digit - b'A' + 10,
    }
}

/// A short description of a JSON value for "found …" messages.
fn describe(value: &Value) -> String {
    match value {
        Value::Null => "null".to_owned(),
        Value::Bool(b) => b.to_string(),
        Value::Number(n) => n.to_string(),
        Value::String(s) if s.chars().count() > 40 => {
            format!("the string {:?}…", s.chars().take(40).collect::<String>())
        }
        Value::String(s) => format!("the string {s:?}"),
        Value::Array(a) => format!("an array of {} element(s)", a.len()),
        Value::Object(_) => "an object".to_owned(),
    }
}

/// Whether an unknown key is probably a misspelling of `known`: same letters ignoring case and
/// separators, or within edit distance 2 (1 for short keys).
fn looks_like_typo(key: &str, known: &str) -> bool {
    let norm = |s: &str| {
        s.chars().filter(char::is_ascii_alphanumeric).map(|c| c.to_ascii_lowercase()).collect::<String>()
    };
    let (a, b) = (norm(key), norm(known));
    if a == b {
        return true;
    }
    let budget = if b.len() <= 4 { 1 } else { 2 };
    edit_distance(&a, &b) <= budget
}

fn edit_distance(a: &str, b: &str) -> usize {
    let b: Vec<char> = b.chars().collect();
    let mut prev: Vec<usize> = (0..=b.len()).collect();
    for (i, ca) in a.chars().enumerate() {
        let mut row = vec![i + 1];
        for (j, cb) in b.iter().enumerate() {
            let cost = usize::from(ca != *cb);
            row.push((prev[j] + cost).min(prev[j + 1] + 1).min(row[j] + 1));
        }
        prev = row;
    }
    prev[b.len()]
}

#[cfg(test)]
mod tests {
    use super::*;

    fn errors(json: &str) -> Vec<String> {
        match parse(json) {
            Err(ConfigError::Invalid { errors, .. }) => errors.iter().map(ToString::to_string).collect(),
            other => panic!("expected validation errors, got {other:?}"),
        }
    }

    const KEY: &str = "12345678901234561234567890123456";

    fn one_table(binds: &str, backends: &str) -> String {
        format!(
            r#"{{"tables":[{{"hash_key":"{KEY}","seed":"{KEY}","binds":[{binds}],"backends":[{backends}]}}]}}"#
        )
    }

    const OK_BACKEND: &str = r#"{"ip":"192.0.2.1","state":"active","healthy":true}"#;
    const OK_BIND: &str = r#"{"ip":"203.0.113.1","proto":"tcp","port":80}"#;

    #[test]
    fn reports_every_error_with_its_path() {
        let json = one_table(
            r#"{"ip":"203.0.113.1/40","proto":"TCP","port_start":80.5,"port_end":70000}"#,
            r#"{"ip":"192.0.2.1","state":"Active","healthy":"true"}"#,
        );
        let errs = errors(&json);
        let paths: Vec<&str> = errs.iter().map(|e| e.split(':').next().unwrap_or("")).collect();
        assert_eq!(
            paths,
            [
                "tables[0].binds[0].ip",
                "tables[0].binds[0].proto",
                "tables[0].binds[0].port_start",
                "tables[0].binds[0].port_end",
                "tables[0].backends[0].state",
                "tables[0].backends[0].healthy",
            ],
            "{errs:#?}"
        );
        assert!(errs[1].contains("found \"TCP\""), "{}", errs[1]);
        assert!(errs[3].contains("found 70000"), "{}", errs[3]);
    }

    #[test]
    fn reversed_range_and_missing_port_are_errors() {
        let errs = errors(&one_table(
            r#"{"ip":"203.0.113.1","proto":"tcp","port_start":300,"port_end":250},{"ip":"203.0.113.2","proto":"udp"}"#,
            OK_BACKEND,
        ));
        assert_eq!(errs.len(), 2, "{errs:#?}");
        assert!(errs[0].starts_with("tables[0].binds[0].port_end: port_end 250 is below port_start 300"));
        assert!(errs[1].starts_with("tables[0].binds[1]: missing port"));
    }

    #[test]
    fn bad_keys_name_the_problem() {
        let json = format!(
            r#"{{"tables":[{{"hash_key":"{}","seed":"{}zz","binds":[{OK_BIND}],"backends":[{OK_BACKEND}]}}]}}"#,
            &KEY[..30],
            &KEY[..30]
        );
        let errs = errors(&json);
        assert!(
            errs[0].starts_with("tables[0].hash_key:") && errs[0].ends_with("found 30 digits"),
            "{errs:?}"
        );
        assert!(errs[1].starts_with("tables[0].seed:") && errs[1].contains("'z' at position 30"), "{errs:?}");
    }

    #[test]
    fn table_rules() {
        let dup = format!("{OK_BACKEND},{OK_BACKEND}");
        assert_eq!(
            errors(&one_table(OK_BIND, &dup)),
            [
                "tables[0].backends[1].ip: 192.0.2.1 is already listed as backends[0]; expected each backend once per table"
            ]
        );
        let inactive = r#"{"ip":"192.0.2.1","state":"inactive","healthy":true}"#;
        assert!(
            errors(&one_table(OK_BIND, inactive))[0]
                .starts_with("tables[0].backends: every backend is inactive")
        );
        assert!(
            errors(&one_table("", OK_BACKEND))[0].starts_with("tables[0].binds: expected at least one bind")
        );
        let v6 = r#"{"ip":"2001:db8::1","state":"active","healthy":true}"#;
        assert!(errors(&one_table(OK_BIND, v6))[0].contains("IPv6 address"));
    }

    #[test]
    fn overlapping_binds_across_tables_are_rejected_naming_both() {
        let table = |bind: &str| {
            format!(r#"{{"hash_key":"{KEY}","seed":"{KEY}","binds":[{bind}],"backends":[{OK_BACKEND}]}}"#)
        };
        let a = table(r#"{"ip":"203.0.113.0/24","proto":"tcp","port_start":80,"port_end":90}"#);
        let b = table(r#"{"ip":"203.0.113.7","proto":"tcp","port":90}"#);
        let errs = errors(&format!(r#"{{"tables":[{a},{b}]}}"#));
        assert_eq!(errs.len(), 1);
        assert!(
            errs[0].starts_with("tables[1].binds[0]:") && errs[0].contains("tables[0].binds[0]"),
            "{errs:?}"
        );
        // Different ports, or a different protocol, on the same address stay legal.
        let c = table(r#"{"ip":"203.0.113.7","proto":"tcp","port":91}"#);
        let d = table(r#"{"ip":"203.0.113.7","proto":"udp","port":80}"#);
        assert!(parse(&format!(r#"{{"tables":[{a},{c},{d}]}}"#)).is_ok());
    }

    #[test]
    fn warnings_for_accepted_oddities() {
        let json = one_table(
            r#"{"ip":"198.51.100.77/26","proto":"tcp","port":80,"port_start":1,"prot":"udp"}"#,
            r#"{"ip":"192.0.2.1","state":"active"}"#,
        );
        let validated = parse(&json).expect("valid with warnings");
        let warnings: Vec<String> = validated.warnings.iter().map(ToString::to_string).collect();
        assert_eq!(warnings.len(), 4, "{warnings:#?}");
        assert!(warnings[0].contains("unknown key") && warnings[0].contains("\"proto\""));
        assert!(warnings[1].contains("using 198.51.100.64/26"));
        assert!(warnings[2].starts_with("tables[0].binds[0].port_start: ignored"));
        assert!(warnings[3].starts_with("tables[0].backends[0].healthy: missing"));
        let bind = validated.config.tables()[0].binds()[0];
        assert_eq!(bind.prefix.to_string(), "198.51.100.64/26");
    }

    #[test]
    fn syntax_errors_carry_line_and_column() {
        match parse("{\n  \"tables\": [\n}") {
            Err(ConfigError::Syntax { line, .. }) => assert_eq!(line, 3),
            other => panic!("expected a syntax error, got {other:?}"),
        }
    }

    #[test]
    fn typo_detection_is_not_trigger_happy() {
        assert!(looks_like_typo("backend", "backends"));
        assert!(looks_like_typo("hashKey", "hash_key"));
        assert!(looks_like_typo("Port", "port"));
        assert!(!looks_like_typo("extra_key_dropped", "hash_key"));
        assert!(!looks_like_typo("name", "seed"));
        assert!(!looks_like_typo("healthchecks", "healthy"));
    }

    #[test]
    fn prefix_masking_and_overlap() {
        let p = |s: &str, l| Prefix::new(s.parse().expect("address"), l).expect("prefix");
        assert_eq!(p("10.20.30.40", 16).to_string(), "10.20.0.0/16");
        assert_eq!(p("10.20.30.40", 0).to_string(), "0.0.0.0/0");
        assert!(p("10.0.0.0", 8).overlaps(&p("10.1.2.3", 32)));
        assert!(!p("10.0.0.0", 8).overlaps(&p("11.0.0.0", 8)));
        assert!(!p("0.0.0.0", 0).overlaps(&p("::", 0)));
        assert!(Prefix::new("::1".parse().expect("v6"), 129).is_none());
    }
}
