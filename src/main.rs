//! The `tessera` command line: a thin face over the library. It parses arguments, renders the
//! engine's events as progress bars on stderr, and prints results (human or `--json`) on stdout.

mod cli;

fn main() -> std::process::ExitCode {
    // Rust ignores SIGPIPE, so a closed stdout (`tessera runs list | head -1`) would make the
    // next print panic; end quietly on it, as other command-line tools do.
    #[cfg(unix)]
    // SAFETY: done first, before any other thread exists; restores the default disposition.
    unsafe {
        libc::signal(libc::SIGPIPE, libc::SIG_DFL);
    }
    cli::run()
}
