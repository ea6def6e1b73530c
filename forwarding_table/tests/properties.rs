//! Rendezvous-hashing properties of `generate::rows` (glb-director.md §4, decisions.md §2), checked
//! on random tables built through the public constructors.
//!
//! Every table generation is 65 536 rows, so each property runs a modest number of cases. Backend
//! addresses come from documentation and benchmarking ranges only (198.18.0.0/15, 192.0.2.0/24,
//! 198.51.100.0/24, 203.0.113.0/24).

use forwarding_table::TABLE_ENTRIES;
use forwarding_table::config::{Backend, BackendState, Bind, Config, PortRange, Prefix, Protocol, Table};
use forwarding_table::generate::{self, Row};
use forwarding_table::hash::{self, Key};
use proptest::prelude::*;
use std::net::{IpAddr, Ipv4Addr};

const HASH_KEY: Key = *b"\x12\x34\x56\x78\x90\x12\x34\x56\x12\x34\x56\x78\x90\x12\x34\x56";

/// Most backends a generated table gets in the add/remove properties.
const MAX_GENERATED: usize = 16;

// ---------------------------------------------------------------------------------------------
// Generators and helpers
// ---------------------------------------------------------------------------------------------

/// One IPv4 address from a documentation or benchmarking range.
fn doc_address() -> impl Strategy<Value = Ipv4Addr> {
    let benchmark_base = u32::from(Ipv4Addr::new(198, 18, 0, 0));
    prop_oneof![
        4 => (0u32..(1 << 17)).prop_map(move |offset| Ipv4Addr::from(benchmark_base + offset)),
        1 => any::<u8>().prop_map(|host| Ipv4Addr::new(192, 0, 2, host)),
        1 => any::<u8>().prop_map(|host| Ipv4Addr::new(198, 51, 100, host)),
        1 => any::<u8>().prop_map(|host| Ipv4Addr::new(203, 0, 113, host)),
    ]
}

/// `len` distinct documentation addresses in random order.
fn distinct_addresses(len: std::ops::RangeInclusive<usize>) -> impl Strategy<Value = Vec<Ipv4Addr>> {
    prop::collection::btree_set(doc_address(), len)
        .prop_map(|set| set.into_iter().collect::<Vec<_>>())
        .prop_shuffle()
}

/// Distinct addresses plus an index into them.
fn addresses_and_index(
    len: std::ops::RangeInclusive<usize>,
) -> impl Strategy<Value = (Vec<Ipv4Addr>, usize)> {
    distinct_addresses(len).prop_flat_map(|addresses| {
        let len = addresses.len();
        (Just(addresses), 0..len)
    })
}

/// Any state, mostly the common ones.
fn any_state() -> impl Strategy<Value = BackendState> {
    prop_oneof![
        6 => Just(BackendState::Active),
        2 => Just(BackendState::Filling),
        1 => Just(BackendState::Draining),
        1 => Just(BackendState::Inactive),
    ]
}

/// A state that makes a healthy backend good.
fn good_state() -> impl Strategy<Value = BackendState> {
    prop_oneof![
        3 => Just(BackendState::Active),
        1 => Just(BackendState::Filling),
    ]
}

/// (state, healthy) for up to [`MAX_GENERATED`] + 1 backends; zipped with addresses.
fn any_health() -> impl Strategy<Value = Vec<(BackendState, bool)>> {
    prop::collection::vec((any_state(), prop::bool::weighted(0.85)), MAX_GENERATED + 1)
}

fn backend(address: Ipv4Addr, state: BackendState, healthy: bool) -> Backend {
    Backend { address, state, healthy }
}

fn bind() -> Bind {
    Bind {
        prefix: Prefix::new(IpAddr::V4(Ipv4Addr::new(192, 0, 2, 80)), 32).expect("/32 is valid"),
        proto: Protocol::Tcp,
        ports: PortRange::single(443),
    }
}

/// A table with the given backends, checked by `Table::new` and `Config::new`.
fn table(seed: Key, backends: Vec<Backend>) -> Table {
    let table = Table::new(Some("t".into()), HASH_KEY, seed, vec![bind()], backends)
        .unwrap_or_else(|errors| panic!("generated table is invalid: {errors:?}"));
    let config = Config::new(vec![table]).expect("a single table has no cross-table clash");
    config.tables()[0].clone()
}

/// Makes sure at least one backend is a candidate, as `Table::new` requires.
fn ensure_candidate(backends: &mut [Backend]) {
    if !backends.iter().any(|b| b.state.is_candidate()) {
        backends[0].state = BackendState::Active;
    }
}

/// Rows with slot indices replaced by the backends' addresses.
fn rows_by_address(table: &Table) -> Vec<(Ipv4Addr, Ipv4Addr)> {
    let backends = table.backends();
    generate::rows(table)
        .into_iter()
        .map(|row| (backends[usize::from(row.primary)].address, backends[usize::from(row.secondary)].address))
        .collect()
}

fn slot(index: usize) -> u8 {
    u8::try_from(index).expect("tables have at most 256 backends")
}

fn count(n: usize) -> u32 {
    u32::try_from(n).expect("counts of rows fit in u32")
}

fn row_number(index: usize) -> u32 {
    u32::try_from(index).expect("row numbers are below 65536")
}

/// The rendezvous property: `with` is `without` plus backend `x`. Every row that does not name
/// `x` in `with` must be the same row (by address) in `without`, and rows naming `x` exist exactly
/// when `x` is a candidate. When every candidate is good, `x` displaces exactly one position: as
/// primary it pushes the old primary to secondary, as secondary it keeps the old primary.
fn assert_only_rows_naming(
    x: &Backend,
    with: &[(Ipv4Addr, Ipv4Addr)],
    without: &[(Ipv4Addr, Ipv4Addr)],
    all_good: bool,
) -> Result<(), TestCaseError> {
    prop_assert_eq!(with.len(), TABLE_ENTRIES);
    prop_assert_eq!(without.len(), TABLE_ENTRIES);
    let mut naming_x = 0usize;
    for (r, (new, old)) in with.iter().zip(without).enumerate() {
        prop_assert!(
            old.0 != x.address && old.1 != x.address,
            "row {} of the table without {} names it: {:?}",
            r,
            x.address,
            old
        );
        if new.0 != x.address && new.1 != x.address {
            prop_assert_eq!(new, old, "row {} changed although it does not name {}", r, x.address);
            continue;
        }
        naming_x += 1;
        if all_good {
            if new.0 == x.address {
                prop_assert_eq!(new.1, old.0, "row {}: the old primary must become secondary", r);
            } else {
                prop_assert_eq!(new.0, old.0, "row {}: the old primary must stay primary", r);
            }
        }
    }
    if x.state.is_candidate() {
        prop_assert!(naming_x > 0, "candidate {} is named in no row", x.address);
    } else {
        prop_assert_eq!(naming_x, 0, "inactive {} is named in a row", x.address);
    }
    Ok(())
}

/// `after` is `before` with backend `x` (good in `before`) turned bad, every other backend good.
/// `x` must be primary nowhere, secondary in every row it owned (whose primary is the former
/// secondary, which is good), and every other row must be unchanged.
fn assert_bad_backend_hands_over(x: usize, before: &[Row], after: &[Row]) -> Result<(), TestCaseError> {
    let x = slot(x);
    let mut owned = 0usize;
    for (r, (old, new)) in before.iter().zip(after).enumerate() {
        prop_assert_ne!(new.primary, x, "row {}: a bad backend is primary", r);
        if old.primary == x {
            owned += 1;
            prop_assert_ne!(old.secondary, x, "row {}: (x, x) with two candidates", r);
            prop_assert_eq!(
                *new,
                Row { primary: old.secondary, secondary: x },
                "row {}: expected (former secondary, former primary)",
                r
            );
        } else {
            prop_assert_eq!(new, old, "row {}: a row the bad backend did not own changed", r);
        }
    }
    prop_assert!(owned > 0, "the backend owned no row before turning bad");
    Ok(())
}

/// glb-director.md §4 score, computed in one shot: `SipHash(seed, row_seed ‖ address)` read
/// big-endian (independent of the incremental `RowScorer` that `generate` uses).
fn model_score(seed: &Key, row: u32, address: Ipv4Addr) -> u64 {
    let mut input = hash::row_seed(seed, row).to_vec();
    input.extend_from_slice(&address.octets());
    u64::from_be_bytes(hash::siphash(seed, &input).to_le_bytes())
}

/// decisions.md §2, written independently of `generate`: rank by score (a full sort), then apply
/// the row rule.
fn model_row(table: &Table, row: u32) -> Row {
    let mut ranked: Vec<(u64, u8, bool)> = table
        .backends()
        .iter()
        .enumerate()
        .filter(|(_, b)| b.state != BackendState::Inactive)
        .map(|(i, b)| (model_score(table.seed(), row, b.address), slot(i), b.is_good()))
        .collect();
    ranked.sort_unstable_by_key(|&(score, _, _)| score);
    let first = ranked[0].1;
    let second = ranked.get(1).map_or(first, |r| r.1);
    match ranked.iter().find(|r| r.2) {
        Some(&(_, good, _)) if good != first => Row { primary: good, secondary: first },
        _ => Row { primary: first, secondary: second },
    }
}

// ---------------------------------------------------------------------------------------------
// Properties
// ---------------------------------------------------------------------------------------------

proptest! {
    #![proptest_config(ProptestConfig::with_cases(10))]

    /// Adding a backend anywhere in the list (shifting later slots) changes only rows that name it.
    #[test]
    fn adding_a_backend_changes_only_rows_naming_it(
        seed in any::<Key>(),
        (addresses, position) in addresses_and_index(2..=MAX_GENERATED + 1),
        health in any_health(),
    ) {
        let mut all: Vec<Backend> = addresses
            .iter()
            .zip(&health)
            .map(|(&a, &(state, healthy))| backend(a, state, healthy))
            .collect();
        let x = all.remove(position);
        ensure_candidate(&mut all);
        let without = all.clone();
        all.insert(position, x);
        let all_good = all.iter().filter(|b| b.state.is_candidate()).all(Backend::is_good);
        let with = rows_by_address(&table(seed, all));
        let without = rows_by_address(&table(seed, without));
        assert_only_rows_naming(&x, &with, &without, all_good)?;
    }

    /// Removing a backend from anywhere in the list changes only rows that named it.
    #[test]
    fn removing_a_backend_changes_only_rows_naming_it(
        seed in any::<Key>(),
        (addresses, position) in addresses_and_index(2..=MAX_GENERATED + 1),
        health in any_health(),
    ) {
        let mut all: Vec<Backend> = addresses
            .iter()
            .zip(&health)
            .map(|(&a, &(state, healthy))| backend(a, state, healthy))
            .collect();
        let mut remaining = all.clone();
        let x = remaining.remove(position);
        if !remaining.iter().any(|b| b.state.is_candidate()) {
            let keep = usize::from(position == 0);
            all[keep].state = BackendState::Active;
            remaining[0].state = BackendState::Active;
        }
        let all_good = all.iter().filter(|b| b.state.is_candidate()).all(Backend::is_good);
        let with = rows_by_address(&table(seed, all));
        let without = rows_by_address(&table(seed, remaining));
        assert_only_rows_naming(&x, &with, &without, all_good)?;
    }
}

proptest! {
    #![proptest_config(ProptestConfig::with_cases(16))]

    /// N healthy active backends each own 65536/N rows as primary (and as secondary), within ±5%,
    /// widened to 6 binomial standard deviations where 5% is statistically too tight (N > 5);
    /// the whole distribution also passes a chi-square test at p ≈ 1e-7.
    #[test]
    fn healthy_active_backends_share_rows_evenly(
        seed in any::<Key>(),
        addresses in distinct_addresses(2..=24),
    ) {
        let n = addresses.len();
        let backends = addresses
            .iter()
            .map(|&a| backend(a, BackendState::Active, true))
            .collect();
        let rows = generate::rows(&table(seed, backends));
        let mut primary = vec![0u32; n];
        let mut secondary = vec![0u32; n];
        for (r, row) in rows.iter().enumerate() {
            prop_assert_ne!(row.primary, row.secondary, "row {} repeats a backend", r);
            primary[usize::from(row.primary)] += 1;
            secondary[usize::from(row.secondary)] += 1;
        }
        let total = f64::from(count(TABLE_ENTRIES));
        let n_f = f64::from(count(n));
        let expected = total / n_f;
        let sigma = (total * (1.0 / n_f) * (1.0 - 1.0 / n_f)).sqrt();
        let tolerance = (0.05 * expected).max(6.0 * sigma);
        for (name, counts) in [("primary", &primary), ("secondary", &secondary)] {
            for (i, &c) in counts.iter().enumerate() {
                prop_assert!(
                    (f64::from(c) - expected).abs() <= tolerance,
                    "backend {} is {} in {} rows, expected {:.0} ± {:.0} (N = {})",
                    i, name, c, expected, tolerance, n
                );
            }
            let chi_square: f64 = counts
                .iter()
                .map(|&c| (f64::from(c) - expected).powi(2) / expected)
                .sum();
            // Wilson–Hilferty approximation of the chi-square quantile, z = 5.2 (p ≈ 1e-7).
            let df = n_f - 1.0;
            let h = 2.0 / (9.0 * df);
            let limit = df * (1.0 - h + 5.2 * h.sqrt()).powi(3);
            prop_assert!(
                chi_square <= limit,
                "{} counts {:?} fail chi-square: {:.1} > {:.1}",
                name, counts, chi_square, limit
            );
        }
    }
}

proptest! {
    #![proptest_config(ProptestConfig::with_cases(10))]

    /// Draining one backend (healthy or not) while all others are good: it is primary nowhere,
    /// secondary in every row it owned (behind the former secondary), and no other row changes.
    #[test]
    fn draining_hands_rows_to_the_former_secondary(
        seed in any::<Key>(),
        (addresses, x) in addresses_and_index(2..=24),
        states in prop::collection::vec(good_state(), 24),
        drained_healthy in any::<bool>(),
    ) {
        let before: Vec<Backend> = addresses
            .iter()
            .zip(&states)
            .map(|(&a, &state)| backend(a, state, true))
            .collect();
        let mut after = before.clone();
        after[x] = backend(addresses[x], BackendState::Draining, drained_healthy);
        let before = generate::rows(&table(seed, before));
        let after = generate::rows(&table(seed, after));
        assert_bad_backend_hands_over(x, &before, &after)?;
    }

    /// An active or filling backend turning unhealthy loses its rows exactly like draining does.
    #[test]
    fn unhealthy_hands_rows_to_the_former_secondary(
        seed in any::<Key>(),
        (addresses, x) in addresses_and_index(2..=24),
        states in prop::collection::vec(good_state(), 24),
    ) {
        let before: Vec<Backend> = addresses
            .iter()
            .zip(&states)
            .map(|(&a, &state)| backend(a, state, true))
            .collect();
        let mut after = before.clone();
        after[x].healthy = false;
        let before = generate::rows(&table(seed, before));
        let after = generate::rows(&table(seed, after));
        assert_bad_backend_hands_over(x, &before, &after)?;
    }
}

proptest! {
    #![proptest_config(ProptestConfig::with_cases(16))]

    /// Exactly one candidate (any state but inactive, healthy or not) among inactive backends:
    /// every row is (c, c).
    #[test]
    fn single_candidate_fills_every_row(
        seed in any::<Key>(),
        (addresses, c) in addresses_and_index(1..=9),
        state in prop_oneof![
            Just(BackendState::Active),
            Just(BackendState::Filling),
            Just(BackendState::Draining),
        ],
        health in prop::collection::vec(any::<bool>(), 9),
    ) {
        let backends: Vec<Backend> = addresses
            .iter()
            .zip(&health)
            .enumerate()
            .map(|(i, (&a, &healthy))| {
                backend(a, if i == c { state } else { BackendState::Inactive }, healthy)
            })
            .collect();
        let c = slot(c);
        let rows = generate::rows(&table(seed, backends));
        prop_assert_eq!(rows.len(), TABLE_ENTRIES);
        for (r, row) in rows.iter().enumerate() {
            prop_assert_eq!(
                *row,
                Row { primary: c, secondary: c },
                "row {}",
                r
            );
        }
    }

    /// Mixed states and health (including "nobody is good"): sampled rows equal an independent
    /// sort-based model of decisions.md §2.
    #[test]
    fn rows_follow_the_documented_rule(
        seed in any::<Key>(),
        addresses in distinct_addresses(1..=MAX_GENERATED),
        health in prop::collection::vec((any_state(), prop::bool::weighted(0.6)), MAX_GENERATED),
        offset in 0usize..97,
    ) {
        let mut backends: Vec<Backend> = addresses
            .iter()
            .zip(&health)
            .map(|(&a, &(state, healthy))| backend(a, state, healthy))
            .collect();
        ensure_candidate(&mut backends);
        let table = table(seed, backends);
        let rows = generate::rows(&table);
        let sampled = (offset..TABLE_ENTRIES).step_by(97).chain([0, TABLE_ENTRIES - 1]);
        for r in sampled {
            prop_assert_eq!(rows[r], model_row(&table, row_number(r)), "row {}", r);
        }
    }
}
