//! Open Clip Art (Debian's openclipart-svg): SVGs captioned from their own metadata.

mod common;

use common::*;

#[test]
fn clip_art_folder_imports_with_captions_from_svg_metadata() {
    let tools = assets().join("openclipart/svg/tools");
    let regular_files = walkdir::WalkDir::new(&tools)
        .into_iter()
        .flatten()
        .filter(|e| e.file_type().is_file() && e.path().extension().is_some_and(|x| x == "svg"))
        .count();
    assert!(regular_files > 100, "{regular_files}");
    let data = tempfile::tempdir().unwrap();
    let out = run_ok(
        tessera(data.path())
            .args(["import", "folder"])
            .arg(&tools)
            .args(["--dataset", "clipart", "--json"]),
    );
    let report = json(&out);
    assert_eq!(report["problems"].as_array().unwrap().len(), 0, "{report}");
    // symbolic links (the package's cross-listed categories) are not imported twice
    assert_eq!(report["added"].as_u64().unwrap() as usize, regular_files);
    let items = items(data.path(), "clipart");
    assert_eq!(items.len(), regular_files);
    assert!(items.iter().all(|i| !i.caption.trim().is_empty()));
    let hammer = items
        .iter()
        .find(|i| i.source_path.ends_with("construction_hammer_jon__01.svg"))
        .expect("the hammer");
    assert!(
        hammer
            .caption
            .starts_with("Construction Hammer. metal head hammer with rubber handle. "),
        "{}",
        hammer.caption
    );
    assert!(hammer.caption.contains("carpentry") && !hammer.caption.contains("hammer, "));
    // the original SVG bytes are stored, with a raster thumbnail beside them
    let svg = std::fs::read(&hammer.source_path).unwrap();
    let stored = std::fs::read(
        data.path()
            .join("blobs")
            .join(&hammer.image_hash[..2])
            .join(&hammer.image_hash),
    )
    .unwrap();
    assert_eq!(svg, stored);
}
