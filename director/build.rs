//! Compiles the DPDK shim (`src/io/dpdk/shim.c`) when the `dpdk` feature is on; otherwise does
//! nothing, so the default build needs no DPDK.

fn main() {
    println!("cargo:rerun-if-changed=build.rs");
    if std::env::var_os("CARGO_FEATURE_DPDK").is_some() {
        #[cfg(feature = "dpdk")]
        dpdk::build();
    }
}

#[cfg(feature = "dpdk")]
mod dpdk {
    const SHIM: &str = "src/io/dpdk/shim.c";

    /// Debian 12's libdpdk-dev; the shim uses only API stable since then.
    const MIN_VERSION: &str = "22.11";

    pub fn build() {
        println!("cargo:rerun-if-changed={SHIM}");
        // Probe first without emitting link flags: the shim's static archive must come before
        // the DPDK libraries on the link line (they are linked --as-needed).
        let lib = pkg_config::Config::new()
            .atleast_version(MIN_VERSION)
            .cargo_metadata(false)
            .probe("libdpdk")
            .unwrap_or_else(|e| {
                panic!("feature `dpdk` needs libdpdk >= {MIN_VERSION} (apt-get install libdpdk-dev pkg-config): {e}")
            });
        let mut shim = cc::Build::new();
        shim.file(SHIM).includes(&lib.include_paths).flag("-include").flag("rte_config.h").warnings(true);
        for (name, value) in &lib.defines {
            shim.define(name, value.as_deref());
        }
        // libdpdk.pc's baseline: the inline fast path (rte_memcpy, ring ops) assumes SSE4.2.
        if std::env::var("CARGO_CFG_TARGET_ARCH").as_deref() == Ok("x86_64") {
            shim.flag("-march=corei7");
        }
        shim.compile("glbd_dpdk_shim");
        for path in &lib.link_paths {
            println!("cargo:rustc-link-search=native={}", path.display());
        }
        for name in &lib.libs {
            println!("cargo:rustc-link-lib={name}");
        }
    }
}
