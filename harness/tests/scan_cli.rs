//! `traceless scan` as an auditor runs it: several `--image` canaries at once, each hit naming the
//! image it belongs to, exit 1 when something was found and 0 when nothing was.

use std::path::Path;
use std::process::Command;

use base64::Engine as _;
use rand::SeedableRng as _;
use rand::rngs::StdRng;
use traceless_scan::canary::{ImageFormat, ImageSpec, generate_image};

fn canary(dir: &Path, name: &str, format: ImageFormat, rng: &mut StdRng) -> Vec<u8> {
    let spec = ImageSpec {
        format,
        width: 64,
        height: 48,
        metadata: true,
    };
    let bytes = generate_image(&spec, rng).unwrap().bytes;
    std::fs::write(dir.join(name), &bytes).unwrap();
    bytes
}

fn scan(dir: &Path, file: &str) -> (Option<i32>, String) {
    let out = Command::new(env!("CARGO_BIN_EXE_traceless"))
        .current_dir(dir)
        .args([
            "scan", "--image", "a.png", "--image", "b.jpg", "--image", "c.webp", file,
        ])
        .output()
        .unwrap();
    (
        out.status.code(),
        String::from_utf8(out.stdout).unwrap() + &String::from_utf8_lossy(&out.stderr),
    )
}

#[test]
fn several_images_each_hit_names_its_image() {
    let dir = tempfile::tempdir().unwrap();
    let mut rng = StdRng::seed_from_u64(15);
    canary(dir.path(), "a.png", ImageFormat::Png, &mut rng);
    let b = canary(dir.path(), "b.jpg", ImageFormat::Jpeg, &mut rng);
    canary(dir.path(), "c.webp", ImageFormat::Webp, &mut rng);

    // A log line carrying 400 bytes from the middle of b.jpg, base64-encoded.
    let piece = &b[b.len() / 2 - 200..b.len() / 2 + 200];
    let log = format!(
        "INFO request done\nDEBUG body={}\nINFO next\n",
        base64::engine::general_purpose::STANDARD.encode(piece)
    );
    std::fs::write(dir.path().join("leaky.log"), log).unwrap();
    let (code, out) = scan(dir.path(), "leaky.log");
    assert_eq!(code, Some(1), "{out}");
    assert!(
        out.contains(" of b.jpg ") && out.contains(" as base64"),
        "{out}"
    );
    assert!(
        !out.contains(" of a.png ") && !out.contains(" of c.webp "),
        "{out}"
    );

    std::fs::write(
        dir.path().join("clean.log"),
        "INFO request done\n".repeat(100),
    )
    .unwrap();
    let (code, out) = scan(dir.path(), "clean.log");
    assert_eq!(code, Some(0), "{out}");
    assert!(out.is_empty(), "{out}");
}

#[test]
fn a_pipe_and_an_empty_file_are_read_as_well_as_a_mapped_file() {
    let dir = tempfile::tempdir().unwrap();
    let mut rng = StdRng::seed_from_u64(16);
    canary(dir.path(), "a.png", ImageFormat::Png, &mut rng);
    let b = canary(dir.path(), "b.jpg", ImageFormat::Jpeg, &mut rng);
    canary(dir.path(), "c.webp", ImageFormat::Webp, &mut rng);
    std::fs::write(dir.path().join("empty.log"), "").unwrap();
    assert_eq!(scan(dir.path(), "empty.log").0, Some(0));
    // A regular file is mapped; standard input, a pipe here, cannot be and is read instead.
    let mut child = Command::new(env!("CARGO_BIN_EXE_traceless"))
        .current_dir(dir.path())
        .args(["scan", "--image", "b.jpg", "/dev/stdin"])
        .stdin(std::process::Stdio::piped())
        .stdout(std::process::Stdio::piped())
        .spawn()
        .unwrap();
    let mut piped = b"DEBUG raw=".to_vec();
    piped.extend_from_slice(&b[b.len() / 2 - 200..b.len() / 2 + 200]);
    std::io::Write::write_all(&mut child.stdin.take().unwrap(), &piped).unwrap();
    let out = child.wait_with_output().unwrap();
    let text = String::from_utf8_lossy(&out.stdout);
    assert_eq!(out.status.code(), Some(1), "{text}");
    assert!(text.contains(" of b.jpg "), "{text}");
}

#[test]
fn an_image_is_required() {
    let out = Command::new(env!("CARGO_BIN_EXE_traceless"))
        .args(["scan", "some.log"])
        .output()
        .unwrap();
    assert_eq!(out.status.code(), Some(2));
    assert!(String::from_utf8_lossy(&out.stderr).contains("--image"));
}
