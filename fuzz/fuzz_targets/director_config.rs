//! Any bytes (read as UTF-8, lossily) → `DirectorConfig::parse`, the reader of director.conf.
//!
//! Must hold: never panics and every error renders; an accepted config has in-range lcores and
//! flow-path references, and yields pipeline settings.
#![no_main]

use glb_director::config::{ConfigError, DirectorConfig, MAX_FLOW_PATHS_PER_LCORE, MAX_LCORE};
use libfuzzer_sys::fuzz_target;

fuzz_target!(|data: &[u8]| {
    if data.len() > 64 * 1024 {
        return;
    }
    let text = String::from_utf8_lossy(data);
    let config = match DirectorConfig::parse("director.conf", &text) {
        Ok(config) => config,
        Err(error) => {
            assert!(!error.to_string().is_empty());
            if let ConfigError::Invalid(messages) = &error {
                assert!(!messages.is_empty(), "rejected without a message");
            }
            return;
        }
    };
    for lcore in &config.lcores {
        assert!(lcore.id < MAX_LCORE);
        assert!(lcore.flow_paths.len() <= MAX_FLOW_PATHS_PER_LCORE);
        assert!(lcore.flow_paths.iter().all(|&i| i < config.flow_paths.len()));
        assert!(lcore.work_source.is_none_or(|n| n < MAX_LCORE));
        assert!(lcore.num_dist_workers.is_none_or(|n| n >= 1));
    }
    let pipeline = config.pipeline([0x02, 0, 0, 0, 0, 0x02]);
    assert_eq!(pipeline.endpoint.src_ip, config.outbound_src_ip);
    assert_eq!(pipeline.endpoint.gateway_mac, config.outbound_gateway_mac);
    assert!(!pipeline.hash_fields.to_string().is_empty());
    if let Some(alt) = pipeline.alt_hash_fields {
        assert!(!alt.to_string().is_empty());
    }
});
