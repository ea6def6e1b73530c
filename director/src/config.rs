//! `director.conf`: GLB's keys, defaults and validation messages (glb-director.md §6.2).
//!
//! The messages are GLB's own words so operators' runbooks and log searches keep working; unlike
//! GLB, every problem is reported at once rather than the first one only. Later issues add our
//! own keys (I/O backend, interfaces, cores); GLB's keys keep their meaning.

use crate::pipeline::{ClassifyOptions, PipelineConfig, TunnelEndpoint};
use forwarding_table::HashFields;
use serde_json::{Map, Value};
use std::net::Ipv4Addr;
use thiserror::Error;

/// GLB's `RTE_MAX_LCORE` (DPDK's default build): lcore numbers and `work_source` must be below it.
pub const MAX_LCORE: u64 = 128;
/// Most flow paths one lcore may serve.
pub const MAX_FLOW_PATHS_PER_LCORE: usize = 32;
/// statsd port when `statsd_port` is absent.
pub const DEFAULT_STATSD_PORT: u16 = 28125;

/// Why a director.conf was rejected.
#[derive(Debug, Error)]
pub enum ConfigError {
    /// Not JSON.
    #[error("Failed to parse {path}: {source}")]
    Json {
        /// The file.
        path: String,
        /// The parse error.
        #[source]
        source: serde_json::Error,
    },
    /// JSON, but invalid; every message, in GLB's words.
    #[error("{}", .0.join("; "))]
    Invalid(Vec<String>),
}

/// One `flow_paths` entry: where a worker receives and transmits.
#[derive(Debug, Clone, Copy, PartialEq, Eq, Default)]
pub struct FlowPath {
    /// Receive port.
    pub rx_port: u16,
    /// Receive queue.
    pub rx_queue: u16,
    /// Transmit port.
    pub tx_port: u16,
    /// Transmit queue.
    pub tx_queue: u16,
}

/// One `lcores` entry.
#[derive(Debug, Clone, PartialEq, Eq, Default)]
pub struct Lcore {
    /// The N of `lcore-N`.
    pub id: u64,
    /// Receives.
    pub rx: bool,
    /// Transmits.
    pub tx: bool,
    /// Distributes to workers.
    pub dist: bool,
    /// Runs the pipeline.
    pub work: bool,
    /// Services the kernel interface.
    pub kni: bool,
    /// Indices into [`DirectorConfig::flow_paths`].
    pub flow_paths: Vec<usize>,
    /// Workers behind a distributor.
    pub num_dist_workers: Option<u64>,
    /// The distributor a worker takes work from.
    pub work_source: Option<u64>,
}

/// Which packet-I/O backend drives the port.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub enum Backend {
    /// AF_PACKET, TPACKET_V3 rings with PACKET_FANOUT (the default; no extra packages).
    AfPacket,
    /// AF_XDP, one socket per queue, XDP redirect program loaded by the director.
    AfXdp,
    /// DPDK (cargo feature `dpdk`), EAL arguments from `io.dpdk_eal_args`.
    Dpdk,
}

/// One worker: the core it is pinned to (none: not pinned) and the port queue it serves.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub struct WorkerSpec {
    /// CPU to pin to.
    pub core: Option<usize>,
    /// RX/TX queue of the port.
    pub queue: u16,
}

/// Our `io` section: how the daemon reaches the network (GLB's DPDK EAL arguments and
/// `lcores`/`flow_paths` in DPDK terms; README "Running the director" maps one to the other).
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct IoConfig {
    /// The backend.
    pub backend: Backend,
    /// The port's interface name (AF_PACKET, AF_XDP).
    pub interface: Option<String>,
    /// Workers; when absent, one per GLB lcore with `rx`, on that core, serving the `rx_queue` of
    /// its first flow path (or a single unpinned worker on queue 0).
    pub workers: Vec<WorkerSpec>,
    /// Name of the kernel-path TAP device; `None` turns kernel passthrough off.
    pub kernel_interface: Option<String>,
    /// Sleep after an empty poll (0: busy polling).
    pub idle_sleep_us: u64,
    /// EAL arguments for the DPDK backend.
    pub dpdk_eal_args: Vec<String>,
    /// Address of the Prometheus `/metrics` and `/table` endpoint; `None` disables it.
    pub metrics_listen: Option<std::net::SocketAddr>,
}

/// The kernel-path device's name, as GLB's KNI device.
pub const DEFAULT_KERNEL_INTERFACE: &str = "vglb_kni0";

/// A validated director.conf.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct DirectorConfig {
    /// Destination MAC of tunnelled frames.
    pub outbound_gateway_mac: [u8; 6],
    /// Outer source address.
    pub outbound_src_ip: Ipv4Addr,
    /// Parsed for compatibility; unused (as in GLB).
    pub kni_ip: Option<Ipv4Addr>,
    /// Queues per port.
    pub num_worker_queues: u64,
    /// Tunnel ICMP echo requests to VIPs.
    pub forward_icmp_ping_responses: bool,
    /// Let the NIC drop when out of descriptors.
    pub rx_drop_en: bool,
    /// Where packets enter and leave.
    pub flow_paths: Vec<FlowPath>,
    /// Core roles.
    pub lcores: Vec<Lcore>,
    /// Main hash fields.
    pub hash_fields: HashFields,
    /// Migration hash fields.
    pub alt_hash_fields: Option<HashFields>,
    /// statsd target port on 127.0.0.1.
    pub statsd_port: u16,
    /// Our packet-I/O settings.
    pub io: IoConfig,
}

impl DirectorConfig {
    /// Parses director.conf text; `path` names the file in messages.
    ///
    /// # Errors
    /// Not JSON, or any key invalid (all messages collected).
    pub fn parse(path: &str, text: &str) -> Result<Self, ConfigError> {
        let value: Value = serde_json::from_str(text)
            .map_err(|source| ConfigError::Json { path: path.to_owned(), source })?;
        let empty = Map::new();
        let obj = value.as_object().unwrap_or(&empty);
        let mut errors = Vec::new();
        let config = Self::from_object(obj, &mut errors);
        match config {
            Some(config) if errors.is_empty() => Ok(config),
            _ => Err(ConfigError::Invalid(errors)),
        }
    }

    fn from_object(obj: &Map<String, Value>, errors: &mut Vec<String>) -> Option<Self> {
        let mac = match obj.get("outbound_gateway_mac").and_then(Value::as_str) {
            None => {
                errors.push("outbound_gateway_mac missing from configuration".into());
                None
            }
            Some(text) => {
                let mac = parse_mac(text);
                if mac.is_none() {
                    errors.push(format!("Could not parse gateway MAC address from '{text}'"));
                }
                mac
            }
        };
        let src_ip = match obj.get("outbound_src_ip").and_then(Value::as_str) {
            None => {
                errors.push("outbound_src_ip missing from configuration".into());
                None
            }
            Some(text) => parse_ipv4(text, errors),
        };
        let kni_ip = obj.get("kni_ip").and_then(Value::as_str).and_then(|t| parse_ipv4(t, errors));
        let flow_paths = match obj.get("flow_paths").and_then(Value::as_array) {
            None => {
                errors.push("flow_paths not configured".into());
                Vec::new()
            }
            Some(paths) => paths.iter().map(flow_path).collect(),
        };
        let lcores = match obj.get("lcores").and_then(Value::as_object) {
            None => {
                errors.push("lcores not configured".into());
                Vec::new()
            }
            Some(lcores) => {
                lcores.iter().filter_map(|(k, v)| lcore(k, v, flow_paths.len(), errors)).collect()
            }
        };
        let hash_fields = hash_fields(obj, "hash_fields", errors).unwrap_or_default();
        let alt_hash_fields = hash_fields_opt(obj, "alt_hash_fields", errors);
        let statsd_port = match obj.get("statsd_port") {
            None => DEFAULT_STATSD_PORT,
            Some(v) => match v.as_u64().and_then(|n| u16::try_from(n).ok()) {
                Some(port) => port,
                None => {
                    errors.push(format!("statsd_port must be a port number, got {v}"));
                    DEFAULT_STATSD_PORT
                }
            },
        };
        let io = io_config(obj.get("io"), &lcores, &flow_paths, errors);
        Some(Self {
            outbound_gateway_mac: mac?,
            outbound_src_ip: src_ip?,
            kni_ip,
            num_worker_queues: obj.get("num_worker_queues").and_then(Value::as_u64).unwrap_or(1),
            forward_icmp_ping_responses: !is_literal_false(obj, "forward_icmp_ping_responses"),
            rx_drop_en: !is_literal_false(obj, "rx_drop_en"),
            flow_paths,
            lcores,
            hash_fields,
            alt_hash_fields,
            statsd_port,
            io,
        })
    }

    /// The pipeline settings; `local_mac` is the transmitting port's own address.
    #[must_use]
    pub fn pipeline(&self, local_mac: [u8; 6]) -> PipelineConfig {
        PipelineConfig {
            endpoint: TunnelEndpoint {
                gateway_mac: self.outbound_gateway_mac,
                local_mac,
                src_ip: self.outbound_src_ip,
            },
            hash_fields: self.hash_fields,
            alt_hash_fields: self.alt_hash_fields,
            classify: ClassifyOptions { forward_icmp_echo: self.forward_icmp_ping_responses },
        }
    }
}

fn io_config(
    value: Option<&Value>,
    lcores: &[Lcore],
    flow_paths: &[FlowPath],
    errors: &mut Vec<String>,
) -> IoConfig {
    let empty = Map::new();
    let obj = value.and_then(Value::as_object).unwrap_or(&empty);
    if value.is_some_and(|v| !v.is_object()) {
        errors.push("io must be an object".into());
    }
    let backend = match obj.get("backend").and_then(Value::as_str) {
        None | Some("af_packet") => Backend::AfPacket,
        Some("af_xdp") => Backend::AfXdp,
        Some("dpdk") => Backend::Dpdk,
        Some(other) => {
            errors.push(format!("io.backend must be \"af_packet\", \"af_xdp\" or \"dpdk\", got \"{other}\""));
            Backend::AfPacket
        }
    };
    let workers = match obj.get("workers") {
        Some(Value::Array(list)) => list
            .iter()
            .enumerate()
            .filter_map(|(i, w)| {
                let core = w.get("core").and_then(Value::as_u64).and_then(|c| usize::try_from(c).ok());
                let queue = w.get("queue").and_then(Value::as_u64).and_then(|q| u16::try_from(q).ok());
                match (w.get("core"), core, queue) {
                    (Some(c), None, _) if !c.is_null() => {
                        errors.push(format!("io.workers[{i}].core must be a CPU number"));
                        None
                    }
                    (_, _, None) if w.get("queue").is_some() => {
                        errors.push(format!("io.workers[{i}].queue must be a queue number"));
                        None
                    }
                    _ => Some(WorkerSpec { core, queue: queue.unwrap_or(0) }),
                }
            })
            .collect(),
        Some(_) => {
            errors.push("io.workers must be an array of {\"core\": N, \"queue\": Q}".into());
            Vec::new()
        }
        None => workers_from_lcores(lcores, flow_paths),
    };
    let kernel_interface = match obj.get("kernel_interface") {
        None => Some(DEFAULT_KERNEL_INTERFACE.to_owned()),
        Some(Value::Bool(false) | Value::Null) => None,
        Some(Value::String(name)) if !name.is_empty() && name.len() < 16 => Some(name.clone()),
        Some(_) => {
            errors
                .push("io.kernel_interface must be an interface name (under 16 characters), or false".into());
            None
        }
    };
    let metrics_listen = match obj.get("metrics_listen") {
        None | Some(Value::Null) => None,
        Some(Value::String(addr)) => match addr.parse() {
            Ok(addr) => Some(addr),
            Err(_) => {
                errors.push(format!(
                    "io.metrics_listen must be an address like 127.0.0.1:9102, got \"{addr}\""
                ));
                None
            }
        },
        Some(_) => {
            errors.push("io.metrics_listen must be a string".into());
            None
        }
    };
    IoConfig {
        backend,
        interface: obj.get("interface").and_then(Value::as_str).map(str::to_owned),
        workers,
        kernel_interface,
        idle_sleep_us: obj.get("idle_sleep_us").and_then(Value::as_u64).unwrap_or(0),
        dpdk_eal_args: obj
            .get("dpdk_eal_args")
            .and_then(Value::as_array)
            .map(|a| a.iter().filter_map(Value::as_str).map(str::to_owned).collect())
            .unwrap_or_default(),
        metrics_listen,
    }
}

/// GLB's core plan in our terms: every lcore that receives becomes a worker on that core, serving
/// the RX queue of its first flow path.
fn workers_from_lcores(lcores: &[Lcore], flow_paths: &[FlowPath]) -> Vec<WorkerSpec> {
    let workers: Vec<WorkerSpec> = lcores
        .iter()
        .filter(|l| l.rx)
        .map(|l| WorkerSpec {
            core: usize::try_from(l.id).ok(),
            queue: l.flow_paths.first().and_then(|&i| flow_paths.get(i)).map_or(0, |p| p.rx_queue),
        })
        .collect();
    if workers.is_empty() { vec![WorkerSpec { core: None, queue: 0 }] } else { workers }
}

/// `aa:bb:cc:dd:ee:ff` (hex digits, either case).
#[must_use]
pub fn parse_mac(text: &str) -> Option<[u8; 6]> {
    let mut mac = [0u8; 6];
    let mut parts = text.split(':');
    for byte in &mut mac {
        let part = parts.next()?;
        if part.is_empty() || part.len() > 2 {
            return None;
        }
        *byte = u8::from_str_radix(part, 16).ok()?;
    }
    parts.next().is_none().then_some(mac)
}

fn parse_ipv4(text: &str, errors: &mut Vec<String>) -> Option<Ipv4Addr> {
    let ip = text.parse().ok();
    if ip.is_none() {
        errors.push(format!("Could not parse local IP address from '{text}'"));
    }
    ip
}

fn is_literal_false(obj: &Map<String, Value>, key: &str) -> bool {
    obj.get(key) == Some(&Value::Bool(false))
}

fn is_literal_true(obj: &Map<String, Value>, key: &str) -> bool {
    obj.get(key) == Some(&Value::Bool(true))
}

fn flow_path(value: &Value) -> FlowPath {
    let field = |key| value.get(key).and_then(Value::as_u64).and_then(|n| u16::try_from(n).ok()).unwrap_or(0);
    FlowPath {
        rx_port: field("rx_port"),
        rx_queue: field("rx_queue"),
        tx_port: field("tx_port"),
        tx_queue: field("tx_queue"),
    }
}

fn lcore(key: &str, value: &Value, num_flow_paths: usize, errors: &mut Vec<String>) -> Option<Lcore> {
    let id = key.strip_prefix("lcore-").and_then(|n| n.parse::<u64>().ok()).filter(|&n| n < MAX_LCORE);
    let Some(id) = id else {
        errors.push(format!("{key} is not a valid lcore name (lcore-N, N < {MAX_LCORE})"));
        return None;
    };
    let empty = Map::new();
    let obj = value.as_object().unwrap_or(&empty);
    let mut lcore = Lcore {
        id,
        rx: is_literal_true(obj, "rx"),
        tx: is_literal_true(obj, "tx"),
        dist: is_literal_true(obj, "dist"),
        work: is_literal_true(obj, "work"),
        kni: is_literal_true(obj, "kni"),
        ..Lcore::default()
    };
    if let Some(paths) = obj.get("flow_paths").and_then(Value::as_array) {
        if paths.len() > MAX_FLOW_PATHS_PER_LCORE {
            errors.push(format!(
                "{} flow paths configured, but a maximum of {MAX_FLOW_PATHS_PER_LCORE} is supported",
                paths.len()
            ));
        }
        // Non-numeric entries are skipped, as GLB does.
        for index in paths.iter().filter_map(Value::as_u64) {
            match usize::try_from(index).ok().filter(|&i| i < num_flow_paths) {
                Some(i) => lcore.flow_paths.push(i),
                None => errors.push(format!(
                    "lcore uses invalid flow_path id {index}, only {num_flow_paths} configured"
                )),
            }
        }
    }
    if lcore.dist {
        match obj.get("num_dist_workers").and_then(Value::as_u64) {
            None => errors.push("num_dist_workers must be specified for distributors".into()),
            Some(0) => errors.push("num_dist_workers must be at least 1 for distributors".into()),
            Some(n) => lcore.num_dist_workers = Some(n),
        }
    }
    if lcore.work {
        match obj.get("work_source").and_then(Value::as_u64) {
            None => errors.push("work_source must be specified for workers".into()),
            Some(n) if n >= MAX_LCORE => errors.push("work_source must be a valid core".into()),
            Some(n) => lcore.work_source = Some(n),
        }
    }
    Some(lcore)
}

/// `hash_fields` / `alt_hash_fields`: `None` when absent; an error when present with no field
/// literally `true`.
fn hash_fields_opt(obj: &Map<String, Value>, key: &str, errors: &mut Vec<String>) -> Option<HashFields> {
    obj.get(key)?;
    hash_fields(obj, key, errors)
}

fn hash_fields(obj: &Map<String, Value>, key: &str, errors: &mut Vec<String>) -> Option<HashFields> {
    let value = obj.get(key)?;
    let empty = Map::new();
    let fields = value.as_object().unwrap_or(&empty);
    let on = |name| is_literal_true(fields, name);
    let chosen = HashFields::new(on("src_addr"), on("dst_addr"), on("src_port"), on("dst_port"));
    if chosen.is_none() {
        errors.push(format!("{key} must contain at least 1 field if specified"));
    }
    chosen
}

#[cfg(test)]
mod tests {
    use super::*;

    const MINIMAL: &str = r#"{"outbound_gateway_mac":"3a:89:7c:7b:5d:1f","outbound_src_ip":"192.0.2.10",
        "flow_paths":[{"rx_port":0,"rx_queue":0,"tx_port":0,"tx_queue":0}],
        "lcores":{"lcore-1":{"rx":true,"tx":true,"dist":true,"flow_paths":[0],"num_dist_workers":1},
                  "lcore-2":{"work":true,"work_source":1}}}"#;

    fn errors(text: &str) -> Vec<String> {
        match DirectorConfig::parse("director.conf", text) {
            Err(ConfigError::Invalid(errors)) => errors,
            other => panic!("expected validation errors, got {other:?}"),
        }
    }

    #[test]
    fn defaults() {
        let c = DirectorConfig::parse("director.conf", MINIMAL).expect("valid");
        assert_eq!(c.outbound_gateway_mac, [0x3a, 0x89, 0x7c, 0x7b, 0x5d, 0x1f]);
        assert_eq!(c.hash_fields, HashFields::default());
        assert_eq!(c.alt_hash_fields, None);
        assert!(c.forward_icmp_ping_responses && c.rx_drop_en);
        assert_eq!((c.statsd_port, c.num_worker_queues, c.kni_ip), (28125, 1, None));
        assert_eq!(c.lcores.len(), 2);
        assert_eq!(c.lcores[0].flow_paths, [0]);
        assert_eq!(c.lcores[1].work_source, Some(1));
        assert_eq!(c.io.backend, Backend::AfPacket);
        assert_eq!(c.io.workers, [WorkerSpec { core: Some(1), queue: 0 }], "from GLB's rx lcore");
        assert_eq!(c.io.kernel_interface.as_deref(), Some("vglb_kni0"));
        assert_eq!((c.io.idle_sleep_us, c.io.metrics_listen), (0, None));
    }

    #[test]
    fn io_section() {
        let text = MINIMAL.replace(
            r#""lcores""#,
            r#""io":{"backend":"af_xdp","interface":"veth0","workers":[{"core":0,"queue":0},{"queue":1}],
                    "kernel_interface":false,"idle_sleep_us":50,"metrics_listen":"127.0.0.1:9102"},"lcores""#,
        );
        let io = DirectorConfig::parse("director.conf", &text).expect("valid").io;
        assert_eq!(io.backend, Backend::AfXdp);
        assert_eq!(io.interface.as_deref(), Some("veth0"));
        assert_eq!(io.workers, [WorkerSpec { core: Some(0), queue: 0 }, WorkerSpec { core: None, queue: 1 }]);
        assert_eq!((io.kernel_interface, io.idle_sleep_us), (None, 50));
        assert_eq!(io.metrics_listen, Some("127.0.0.1:9102".parse().expect("address")));
        let bad = MINIMAL.replace(
            r#""lcores""#,
            r#""io":{"backend":"netmap","workers":[{"core":"x"}],"metrics_listen":"nope"},"lcores""#,
        );
        assert_eq!(
            errors(&bad),
            [
                "io.backend must be \"af_packet\", \"af_xdp\" or \"dpdk\", got \"netmap\"",
                "io.workers[0].core must be a CPU number",
                "io.metrics_listen must be an address like 127.0.0.1:9102, got \"nope\"",
            ]
        );
    }

    #[test]
    fn glb_messages_all_at_once() {
        assert_eq!(
            errors("{}"),
            [
                "outbound_gateway_mac missing from configuration",
                "outbound_src_ip missing from configuration",
                "flow_paths not configured",
                "lcores not configured",
            ]
        );
        let bad = MINIMAL
            .replace("3a:89:7c:7b:5d:1f", "3a:89:7c:7b:5d")
            .replace("192.0.2.10", "192.0.2")
            .replace(r#""flow_paths":[0]"#, r#""flow_paths":[0,3]"#)
            .replace(r#""num_dist_workers":1"#, r#""num_dist_workers":0"#)
            .replace(r#""work_source":1"#, r#""work_source":500"#)
            .replace(r#""lcores""#, r#""hash_fields":{"src_addr":"true"},"alt_hash_fields":{},"lcores""#);
        assert_eq!(
            errors(&bad),
            [
                "Could not parse gateway MAC address from '3a:89:7c:7b:5d'",
                "Could not parse local IP address from '192.0.2'",
                "lcore uses invalid flow_path id 3, only 1 configured",
                "num_dist_workers must be at least 1 for distributors",
                "work_source must be a valid core",
                "hash_fields must contain at least 1 field if specified",
                "alt_hash_fields must contain at least 1 field if specified",
            ]
        );
    }

    #[test]
    fn only_literal_values_count() {
        let text = MINIMAL.replace(
            r#""lcores""#,
            r#""forward_icmp_ping_responses":"false","rx_drop_en":false,
               "hash_fields":{"src_addr":false,"dst_port":true,"src_port":1},"alt_hash_fields":{"src_addr":true},"lcores""#,
        );
        let c = DirectorConfig::parse("director.conf", &text).expect("valid");
        assert!(c.forward_icmp_ping_responses, "only the literal false disables");
        assert!(!c.rx_drop_en);
        assert_eq!(c.hash_fields, HashFields::new(false, false, false, true).expect("dst_port"));
        assert_eq!(c.alt_hash_fields, Some(HashFields::default()));
    }

    #[test]
    fn mac_parsing() {
        assert_eq!(parse_mac("AA:bb:0:1:2:3"), Some([0xaa, 0xbb, 0, 1, 2, 3]));
        assert_eq!(parse_mac("aa:bb:cc:dd:ee:ff:00"), None);
        assert_eq!(parse_mac("aa:bb:cc:dd:ee:fff"), None);
        assert_eq!(parse_mac("aa-bb-cc-dd-ee-ff"), None);
    }
}
