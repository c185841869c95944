//! `report.html` rendered by a real browser (headless Chromium): the page shows the verdict and
//! every clause id, and fetches nothing. Needs Debian's `chromium` (`apt-get install chromium`).

use std::io::Read as _;
use std::path::{Path, PathBuf};
use std::process::{Command, Stdio};
use std::time::{Duration, Instant};

use traceless_report::{Format, Report, render, sample};

const CHROMIUM_DEADLINE: Duration = Duration::from_secs(90);

fn chromium() -> PathBuf {
    for name in ["chromium", "chromium-browser", "google-chrome"] {
        if let Some(path) = std::env::var_os("PATH")
            .iter()
            .flat_map(std::env::split_paths)
            .map(|dir| dir.join(name))
            .find(|p| p.is_file())
        {
            return path;
        }
    }
    panic!(
        "headless Chromium is needed to test report.html and was not found on PATH: install it with `apt-get install chromium`"
    );
}

/// The DOM after Chromium has parsed and laid out the page, with networking off.
fn dump_dom(html_file: &Path) -> String {
    let profile = tempfile::tempdir().unwrap();
    let mut child = Command::new(chromium())
        .args([
            "--headless",
            "--no-sandbox",
            "--disable-gpu",
            "--disable-quic",
            "--no-first-run",
            "--disable-background-networking",
            "--disable-component-update",
            "--disable-sync",
            "--disable-dev-shm-usage",
        ])
        .arg(format!("--user-data-dir={}", profile.path().display()))
        .arg("--dump-dom")
        .arg(format!("file://{}", html_file.display()))
        .stdin(Stdio::null())
        .stdout(Stdio::piped())
        .stderr(Stdio::piped())
        .spawn()
        .expect("starting chromium");
    let mut stdout = child.stdout.take().unwrap();
    let reader = std::thread::spawn(move || {
        let mut out = String::new();
        stdout.read_to_string(&mut out).map(|_| out)
    });
    let started = Instant::now();
    let status = loop {
        if let Some(status) = child.try_wait().unwrap() {
            break status;
        }
        if started.elapsed() > CHROMIUM_DEADLINE {
            let _ = child.kill();
            let _ = child.wait();
            panic!("chromium did not finish within {CHROMIUM_DEADLINE:?}");
        }
        std::thread::sleep(Duration::from_millis(50));
    };
    let dom = reader.join().unwrap().expect("reading chromium's output");
    let mut stderr = String::new();
    let _ = child.stderr.take().unwrap().read_to_string(&mut stderr);
    assert!(status.success(), "chromium exited with {status}: {stderr}");
    assert!(
        dom.contains("</html>"),
        "chromium printed no DOM; stderr: {stderr}"
    );
    dom
}

/// Checks the page and returns how long Chromium took to load, parse and lay it out.
fn check(report: &Report, banner: &str) -> Duration {
    let dir = tempfile::tempdir().unwrap();
    let file = dir.path().join("report.html");
    let html = render(report, Format::Html).unwrap();
    std::fs::write(&file, &html).unwrap();

    for forbidden in [
        "<script", "<link", "<img", "<iframe", "<object", "<embed", "<video", "<audio", "url(",
        "@import",
    ] {
        assert!(
            !html.contains(forbidden),
            "report.html is not self-contained: it contains {forbidden:?}"
        );
    }
    for (at, _) in html.match_indices("href=\"") {
        let target = &html[at + 6..];
        assert!(
            target.starts_with('#'),
            "report.html links out of itself: {}",
            &target[..target.len().min(60)]
        );
    }

    let started = Instant::now();
    let dom = dump_dom(&file);
    let took = started.elapsed();
    assert!(
        dom.contains(banner),
        "the rendered page does not show {banner:?}"
    );
    assert!(
        dom.contains(&report.summary_line().replace('&', "&amp;")),
        "the summary line is missing"
    );
    for clause in &report.clauses {
        assert!(
            dom.contains(&format!("id=\"clause-{}\"", clause.id)),
            "clause row {} missing",
            clause.id
        );
        assert!(
            dom.contains(&format!("<code>{}</code>", clause.id)),
            "clause id {} not shown",
            clause.id
        );
    }
    for finding in &report.findings {
        assert!(
            dom.contains(&format!("id=\"finding-{}\"", finding.id)),
            "finding {} missing",
            finding.id
        );
    }
    // Strings from the pipeline stay text: the sample's excerpts hold markup that must not become elements.
    assert!(!dom.contains("<img "), "an excerpt became an element");
    assert!(
        !dom.contains("<b>only</b>"),
        "a waiver justification became markup"
    );
    took
}

#[test]
fn failing_report_renders_in_chromium() {
    let report = sample::failing();
    let _ = check(&report, "FAIL — the policy was broken");
    assert!(
        render(&report, Format::Html)
            .unwrap()
            .contains("&lt;img src=\"data:image/png;base64,")
    );
}

#[test]
fn passing_report_renders_in_chromium() {
    let _ = check(&sample::passing(), "PASS — the policy held under audit");
}

/// 100,000 passing property cases: counted, not listed, so the page stays small and quick. Timed
/// side by side with the small sample, so Chromium's own start-up is not counted against it.
#[test]
fn a_report_of_100000_property_cases_renders_in_chromium_within_2_s() {
    let small = sample::passing();
    let mut big = small.clone();
    let mut passing = traceless_report::PassingRequests::default();
    for id in 0..100_000u64 {
        passing.add(&traceless_report::PassingRequests {
            requests: 1,
            providers: [(if id % 2 == 0 { "openai" } else { "gemini" }.to_owned(), 1)].into(),
            behaviours: [(
                ["ok", "429,ok", "500", "safety-block"][(id % 4) as usize].to_owned(),
                1,
            )]
            .into(),
            statuses: [(
                ["200", "429", "502", "422"][(id % 4) as usize].to_owned(),
                1,
            )]
            .into(),
            durations: [(traceless_report::PassingRequests::bucket(id % 700), 1)].into(),
            total_ms: id % 700,
            max_ms: id % 700,
            fingerprint: format!("{:016x}", id.wrapping_mul(0x9e37_79b9_7f4a_7c15)),
        });
    }
    big.provenance.cases = 100_000;
    big.scenarios.push(traceless_report::ScenarioResult {
        id: "properties".into(),
        title: "100000 property cases drawn from seed 1000".into(),
        passing: Some(passing),
        ..Default::default()
    });
    big.summary = big.summary_line();
    let html = render(&big, Format::Html).unwrap();
    let json = render(&big, Format::Json).unwrap();
    assert!(
        html.len() < 5 << 20 && json.len() < 5 << 20,
        "{} / {} bytes",
        html.len(),
        json.len()
    );
    let small_took = check(&small, "PASS — the policy held under audit");
    let big_took = check(&big, "PASS — the policy held under audit");
    println!(
        "chromium: {big_took:?} for 100,000 cases ({} KB), {small_took:?} for the small sample",
        html.len() / 1024
    );
    assert!(
        big_took.saturating_sub(small_took) < Duration::from_secs(2),
        "{big_took:?} for 100,000 cases against {small_took:?} for the small sample"
    );
}
