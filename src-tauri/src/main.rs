// No console window on Windows release builds; nothing to do elsewhere.
#![cfg_attr(not(debug_assertions), windows_subsystem = "windows")]

fn main() -> std::process::ExitCode {
    match tessera_app::run() {
        Ok(()) => std::process::ExitCode::SUCCESS,
        Err(e) => {
            eprintln!("tessera-app: {e}");
            std::process::ExitCode::FAILURE
        }
    }
}
