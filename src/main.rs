fn main() -> std::process::ExitCode {
    akeyless_csi_provider::main()
}
