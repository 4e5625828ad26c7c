//! The `tessera` command line: a thin face over the library. It parses arguments, renders the
//! engine's events as progress bars on stderr, and prints results (human or `--json`) on stdout.

mod cli;

fn main() -> std::process::ExitCode {
    cli::run()
}
