fn main() -> std::process::ExitCode {
    metallb_hooks::run()
}
