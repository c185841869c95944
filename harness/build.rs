//! Rebuilds the binary when a built-in asset changes: `include_dir!` reads folders, which cargo
//! does not otherwise watch (see `src/assets.rs`).

fn main() {
    for dir in [
        "../fixtures",
        "../scenarios",
        "tests/backends/scenarios",
        "src/init",
    ] {
        println!("cargo::rerun-if-changed={dir}");
    }
}
