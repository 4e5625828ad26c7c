//! `tessera models install NAME` against a local HTTP server standing in for the model host:
//! a download whose SHA-1 is not the published one is discarded, never installed.

mod common;

use std::io::{Read, Write};
use std::net::TcpListener;

use common::*;

/// Serves `body` with `status` to every request on 127.0.0.1 until the test ends.
fn serve(status: &'static str, body: Vec<u8>) -> String {
    let listener = TcpListener::bind("127.0.0.1:0").unwrap();
    let addr = listener.local_addr().unwrap();
    std::thread::spawn(move || {
        for stream in listener.incoming().take(4) {
            let Ok(mut s) = stream else { continue };
            let mut req = [0u8; 2048];
            let _ = s.read(&mut req);
            let head = format!(
                "HTTP/1.1 {status}\r\nContent-Length: {}\r\nConnection: close\r\n\r\n",
                body.len()
            );
            let _ = s.write_all(head.as_bytes());
            let _ = s.write_all(&body);
        }
    });
    format!("http://{addr}")
}

#[test]
fn a_download_with_the_wrong_checksum_is_discarded() {
    let data = tempfile::tempdir().unwrap();
    // the converted tiny.en weights are a real GGML model, but not byte-identical to the
    // official file, so their SHA-1 differs from the published one
    let url = serve("200 OK", std::fs::read(model()).unwrap());
    let out = tessera(data.path())
        .env("TESSERA_WHISPER_MODELS_URL", &url)
        .args(["models", "install", "tiny.en"])
        .output()
        .unwrap();
    assert!(!out.status.success());
    let err = String::from_utf8_lossy(&out.stderr);
    assert!(
        err.contains("checksum mismatch")
            && err.contains("c78c86eb1a8faa21b369bcd33207cc90d64ae9df"),
        "{err}"
    );
    let dir = data.path().join("models/whisper");
    let left: Vec<_> = std::fs::read_dir(&dir)
        .map(|d| d.flatten().map(|e| e.path()).collect())
        .unwrap_or_default();
    assert!(
        left.is_empty(),
        "nothing installed, no partial file: {left:?}"
    );
}

#[test]
fn a_failed_download_says_where_and_why() {
    let data = tempfile::tempdir().unwrap();
    let url = serve("404 Not Found", b"no such model".to_vec());
    let out = tessera(data.path())
        .env("TESSERA_WHISPER_MODELS_URL", &url)
        .args(["models", "install", "base.en"])
        .output()
        .unwrap();
    assert!(!out.status.success());
    let err = String::from_utf8_lossy(&out.stderr);
    assert!(
        err.contains("ggml-base.en.bin") && err.contains("404"),
        "{err}"
    );

    let out = tessera(data.path())
        .args(["models", "install", "enormous"])
        .output()
        .unwrap();
    assert!(!out.status.success());
    assert!(String::from_utf8_lossy(&out.stderr).contains("unknown model \"enormous\""));
}
