//! `write_all` appends `report.md` to `$GITHUB_STEP_SUMMARY` when the variable is set.
//! Its own test binary: it sets a process-wide environment variable.

use traceless_report::{sample, write_all};

#[test]
fn write_all_appends_to_the_github_step_summary() {
    let dir = tempfile::tempdir().unwrap();
    let summary = dir.path().join("step-summary.md");
    std::fs::write(&summary, "# earlier step\n").unwrap();
    // SAFETY: this test binary has this one test, so no other thread reads the environment.
    unsafe { std::env::set_var("GITHUB_STEP_SUMMARY", &summary) };
    let out = dir.path().join("out");
    write_all(&sample::failing(), &out).unwrap();
    write_all(&sample::passing(), &out).unwrap();
    unsafe { std::env::remove_var("GITHUB_STEP_SUMMARY") };

    let text = std::fs::read_to_string(&summary).unwrap();
    let md = std::fs::read_to_string(out.join("report.md")).unwrap();
    assert!(
        text.starts_with("# earlier step\n## ❌ Traceless audit"),
        "{text}"
    );
    assert!(
        text.ends_with(&format!("{md}\n")),
        "the last report.md is not the summary's tail"
    );
    assert_eq!(
        text.matches("Traceless audit — ").count(),
        2,
        "both audits appended"
    );
    for file in ["report.json", "report.md", "report.html", "junit.xml"] {
        assert!(out.join(file).is_file(), "{file} not written");
    }
}
