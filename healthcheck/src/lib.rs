//! `glb-healthcheck`: probes the backends of a GLB forwarding table and writes the "checked" table
//! with each backend's `healthy` flag, then runs a reload command — GLB's health checker, with the
//! fixes listed in `../shared/spec/decisions.md` §6.
//!
//! - [`config`]: the service config and the source table's timing settings;
//! - [`targets`]: what to probe, de-duplicated across tables;
//! - [`probe`]: the http, tcp, gue and fou checks (async; one raw ICMP socket for tunnel replies);
//! - [`dampener`]: GLB's result dampening;
//! - [`apply`]: target results → backend health in the table model (pure);
//! - [`publish`]: the hold, the atomic write and the reload command;
//! - [`service`]: start-up, rounds, SIGHUP;
//! - [`api`], [`status`], [`metrics`]: the `/health` and `/metrics` endpoint.
#![forbid(unsafe_code)]
#![warn(missing_docs)]

pub mod api;
pub mod apply;
pub mod config;
pub mod dampener;
pub mod metrics;
pub mod probe;
pub mod publish;
pub mod service;
pub mod status;
pub mod targets;
