/// The commands the page may call. Declaring them makes Tauri deny every other command, and
/// `capabilities/main.json` grants these (and nothing else of the app's) to the main window.
const COMMANDS: &[&str] = &[
    "system_info",
    "config_preset",
    "datasets",
    "dataset_stats",
    "items",
    "item",
    "search_captions",
    "edit_caption",
    "delete_item",
    "runs",
    "run_detail",
    "checkpoints",
    "delete_run",
    "search_text",
    "search_image",
    "ask",
    "pick_image",
    "pick_paths",
    "start_import",
    "start_ingest",
    "start_export",
    "start_pretrain",
    "start_finetune",
    "resume_run",
    "cancel_job",
    "jobs",
    "verify_whisper",
    "start_whisper_install",
    "ablations",
    "duplicates",
];

fn main() {
    tauri_build::try_build(
        tauri_build::Attributes::new()
            .app_manifest(tauri_build::AppManifest::new().commands(COMMANDS)),
    )
    .expect("the Tauri build step failed");
}
