//! `version`: what was built, and how.

use crate::server;

/// Prints the version, commit and protocol; with `verbose`, the build's settings too.
pub fn print_version(verbose: bool) {
    println!(
        "akeyless-csi-provider {}\ngit commit: {}\nprotocol: {}\nrustc target: {}-{}",
        env!("CARGO_PKG_VERSION"),
        option_env!("AKEYLESS_CSI_GIT_COMMIT").unwrap_or("unknown"),
        server::PROTOCOL_VERSION,
        std::env::consts::ARCH,
        std::env::consts::OS,
    );
    if verbose {
        let features = match env!("AKEYLESS_CSI_BUILD_FEATURES") {
            "" => "(none)",
            list => list,
        };
        let panic = if cfg!(panic = "abort") {
            "abort"
        } else {
            "unwind"
        };
        println!(
            "target: {}\nprofile: {}\nfeatures: {features}\nopt-level: {}\npanic: {panic}\n\
             debug-assertions: {}\nstatic (crt-static): {}\nrustc: {}",
            env!("AKEYLESS_CSI_BUILD_TARGET"),
            env!("AKEYLESS_CSI_BUILD_PROFILE"),
            env!("AKEYLESS_CSI_BUILD_OPT_LEVEL"),
            cfg!(debug_assertions),
            cfg!(target_feature = "crt-static"),
            env!("AKEYLESS_CSI_BUILD_RUSTC"),
        );
    }
}
