//! The `bench` command's options, shared by its three benchmarks.

#[derive(clap::Args, Debug, Clone)]
pub struct BenchArgs {
    /// Pods per round (each its own UID and service-account token).
    #[arg(long, default_value_t = 500)]
    pub pods: usize,
    /// Static objects per SecretProviderClass (all typed, one batch).
    #[arg(long, default_value_t = 10)]
    pub objects: usize,
    /// Namespaces the pods are spread over (each with its own items and grants).
    #[arg(long, default_value_t = 4)]
    pub namespaces: usize,
    /// Service accounts per namespace.
    #[arg(long, default_value_t = 2)]
    pub service_accounts: usize,
    /// Mounts in flight at once (kubelet publishes volumes in parallel).
    #[arg(long, default_value_t = 64)]
    pub concurrency: usize,
    /// Latency added by the emulator to every Akeyless call, in milliseconds.
    #[arg(long, default_value_t = 0)]
    pub latency_ms: u64,
    /// akeylessTokenScope of the SecretProviderClass: pod or serviceAccount.
    #[arg(long, default_value = "pod")]
    pub token_scope: String,
    /// Passed to the provider's --value-cache-ttl.
    #[arg(long, default_value = "0s")]
    pub value_cache_ttl: String,
    /// Number of warm (rotation) rounds after the cold one.
    #[arg(long, default_value_t = 1)]
    pub warm_rounds: usize,
    /// Version round trips measured for the floor.
    #[arg(long, default_value_t = 2000)]
    pub version_calls: usize,
    /// A jq expression for the first object of every SecretProviderClass, whose item then holds
    /// a JSON value with `user`, `host` and `password` (e.g. `.user`, or
    /// `"\(.user)@\(.host)"`), to measure what jq costs a mount.
    #[arg(long)]
    pub jq: Option<String>,
    /// Instead of the mount rounds: issue 12's hostile-filter scenario (six runaway jq filters
    /// at once, memory bombs, a 200,000-key explode), printing each answer and its time,
    /// `Version` and ordinary-mount latency meanwhile, CPU after the answers and peak RSS of
    /// the provider and its jq workers.
    #[arg(long)]
    pub runaway_jq: bool,
    /// Instead of the mount rounds: issue 15's node-restart storm. Every pod (`--pods`, over
    /// `--namespaces` x `--service-accounts`, `--objects` untyped objects each) mounts at once
    /// on a fresh provider, cold then warm; then, on another fresh provider, the same storm while
    /// the emulator answers 429 for `--throttle-secs`. Prints backend calls by command, time
    /// until every pod is mounted, p50/p99, and the requests received during the 429 window.
    #[arg(long)]
    pub storm: bool,
    /// With --storm: how long the emulator answers 429 in the second variant.
    #[arg(long, default_value_t = 5)]
    pub throttle_secs: u64,
    /// With --storm: the `Retry-After` (seconds) of those 429s; 0 sends none.
    #[arg(long, default_value_t = 1)]
    pub retry_after_secs: u64,
    /// With --runaway-jq: the provider's --jq-timeout.
    #[arg(long, default_value = "2s")]
    pub jq_timeout: String,
}
