// Compiles the provider protocol with a pure-Rust protobuf compiler, so no system protoc is needed.
fn main() -> Result<(), Box<dyn std::error::Error>> {
    println!("cargo:rerun-if-changed=proto");
    let descriptors = protox::compile(["v1alpha1/service.proto"], ["proto"])?;
    tonic_prost_build::configure()
        .build_client(true)
        .build_server(true)
        .compile_fds(descriptors)?;
    build_info();
    Ok(())
}

/// What `version --verbose` prints: target, cargo profile, features, opt-level, rustc. Each
/// (target, profile, features) gets its own build-script run, so these never go stale.
fn build_info() {
    let var = |key: &str| std::env::var(key).unwrap_or_default();
    // Build scripts are told only "debug" or "release" (PROFILE); a custom profile's name (e.g.
    // `dist`) is its output directory: <target-dir>/[<triple>/]<profile>/build/<pkg>-<hash>/out.
    let out_dir = var("OUT_DIR");
    let profile = match std::path::Path::new(&out_dir).ancestors().nth(3) {
        Some(dir) if dir.ends_with("debug") => "dev".to_string(),
        Some(dir) => dir.file_name().map_or_else(
            || var("PROFILE"),
            |name| name.to_string_lossy().into_owned(),
        ),
        None => var("PROFILE"),
    };
    let mut features: Vec<String> = std::env::vars()
        .filter_map(|(key, _)| key.strip_prefix("CARGO_FEATURE_").map(str::to_owned))
        .map(|name| name.to_lowercase().replace('_', "-"))
        .collect();
    features.sort();
    let rustc = std::process::Command::new(var("RUSTC"))
        .arg("--version")
        .output()
        .ok()
        .map(|out| String::from_utf8_lossy(&out.stdout).trim().to_string())
        .unwrap_or_default();
    for (key, value) in [
        ("TARGET", var("TARGET")),
        ("PROFILE", profile),
        ("FEATURES", features.join(",")),
        ("OPT_LEVEL", var("OPT_LEVEL")),
        ("RUSTC", rustc),
    ] {
        println!("cargo:rustc-env=AKEYLESS_CSI_BUILD_{key}={value}");
    }
}
