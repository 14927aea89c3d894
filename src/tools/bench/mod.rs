//! `bench`: drives the real provider binary over its socket, as many pods at once as asked,
//! against the in-process Akeyless emulator at a chosen latency, and prints what a platform team
//! wants to know: mount latency percentiles, mounts/s, backend calls per mount for a cold and a
//! warm (rotation) round, the provider's peak RSS, and the floor of a `Version` round trip.

mod args;
mod mounts;
mod process;
mod runaway;
mod storm;

pub use args::BenchArgs;

/// `bench`: the mount benchmark, or `--runaway-jq` / `--storm`.
pub async fn run(args: BenchArgs) -> Result<(), String> {
    if args.runaway_jq {
        runaway::run(&args).await
    } else if args.storm {
        storm::run(&args).await
    } else {
        mounts::run(&args).await
    }
}
