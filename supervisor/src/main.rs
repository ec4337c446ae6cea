//! The `molt` binary: see [`molt_supervisor::cli`].

fn main() -> std::process::ExitCode {
    molt_supervisor::cli::main()
}
