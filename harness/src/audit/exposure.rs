//! The public-exposure probe, after the scenarios: can what the pipeline kept be fetched back
//! over its own port, without credentials? It asks for every written file where backends commonly
//! serve files (the working directory as web root, static prefixes, bare names), through encoded
//! path traversal out of each static prefix, and for every link and id the pipeline's answers
//! named (a result URL that still serves the image after its request is kept and exposed).

use std::collections::BTreeSet;
use std::path::{Path, PathBuf};
use std::sync::RwLock;

use traceless_scan::scan::{Hit, RequestId, Scanner};

use super::client::Client;
use crate::evidence::ExposureProbe;

/// Prefixes under which web frameworks commonly serve a folder.
const STATIC_PREFIXES: &[&str] = &[
    "static",
    "public",
    "files",
    "media",
    "assets",
    "uploads",
    "outputs",
    "images",
    "results",
    "data",
    "downloads",
    "storage",
];

/// The traversal spellings a path normaliser may miss while the file lookup decodes them.
const TRAVERSALS: &[&str] = &["%2e%2e/", "..%2f", "%2e%2e%2f"];

/// Files tried through traversal, and links taken from answers: enough to catch a pattern,
/// bounded so that a run that wrote thousands of files still probes in seconds.
const MAX_TRAVERSAL_FILES: usize = 32;
pub const MAX_ANSWER_LINKS: usize = 256;

/// A link or id a pipeline's answer named, with the request it answered.
#[derive(Debug, Clone, PartialEq, Eq, PartialOrd, Ord)]
pub struct AnswerLink {
    pub request: RequestId,
    /// A path on the pipeline's port (`/results/abc.png`), or a bare id (`abc123`).
    pub link: String,
}

/// The links and ids in the JSON answers of these requests: strings that are paths on the
/// pipeline's port (or URLs of it), and id-like tokens.
pub fn links_in_answers<'a>(
    answers: impl Iterator<Item = (RequestId, &'a [u8])>,
    base: &str,
) -> Vec<AnswerLink> {
    let mut out = BTreeSet::new();
    for (request, body) in answers {
        let Ok(value) = serde_json::from_slice::<serde_json::Value>(body) else {
            continue;
        };
        let mut strings = Vec::new();
        collect_strings(&value, &mut strings);
        for s in strings {
            let link = if let Some(rest) = s.strip_prefix(base) {
                Some(format!("/{}", rest.trim_start_matches('/')))
            } else if (s.starts_with('/') && !s.starts_with("//")) || looks_like_id(s) {
                Some(s.to_owned())
            } else {
                None
            };
            if let Some(link) = link.filter(|l| l.len() <= 512 && !l.contains(char::is_whitespace))
            {
                out.insert(AnswerLink { request, link });
            }
        }
    }
    out.into_iter().take(MAX_ANSWER_LINKS).collect()
}

fn collect_strings<'v>(v: &'v serde_json::Value, out: &mut Vec<&'v str>) {
    match v {
        serde_json::Value::String(s) => out.push(s),
        serde_json::Value::Array(a) => a.iter().for_each(|x| collect_strings(x, out)),
        serde_json::Value::Object(o) => o.values().for_each(|x| collect_strings(x, out)),
        _ => {}
    }
}

/// An id a backend might file a result under: 8 to 64 characters of letters, digits, `-` and
/// `_`, with at least one digit (so words are not taken for ids).
fn looks_like_id(s: &str) -> bool {
    (8..=64).contains(&s.len())
        && s.bytes().any(|b| b.is_ascii_digit())
        && s.bytes()
            .all(|b| b.is_ascii_alphanumeric() || b == b'-' || b == b'_')
}

/// The first segment of each path link: prefixes this backend itself serves things under.
fn prefixes_in(links: &[AnswerLink]) -> Vec<String> {
    let mut out: BTreeSet<String> = STATIC_PREFIXES.iter().map(|p| (*p).to_owned()).collect();
    for l in links {
        if let Some(first) = l.link.strip_prefix('/').and_then(|p| p.split('/').next())
            && !first.is_empty()
            && l.link[1..].contains('/')
        {
            out.insert(first.to_owned());
        }
    }
    out.into_iter().collect()
}

/// Where a written file may be served: its path under the working directory as web root or
/// under a static prefix, its bare name under a prefix, and, out of each prefix, by encoded
/// traversal (`/static/%2e%2e/kept/a.png` reaches `./kept/a.png` from `./static`).
fn candidate_paths(
    workdir: &Path,
    file: &Path,
    prefixes: &[String],
    traverse: bool,
) -> Vec<String> {
    let mut out = Vec::new();
    let name = file
        .file_name()
        .map(|n| n.to_string_lossy().into_owned())
        .unwrap_or_default();
    out.push(format!("/{name}"));
    for prefix in prefixes {
        out.push(format!("/{prefix}/{name}"));
    }
    if let Ok(rel) = file.strip_prefix(workdir) {
        let rel = rel.to_string_lossy();
        out.push(format!("/{rel}"));
        for prefix in prefixes {
            out.push(format!("/{prefix}/{rel}"));
            if traverse {
                for up in TRAVERSALS {
                    for depth in 1..=2 {
                        out.push(format!("/{prefix}/{}{rel}", up.repeat(depth)));
                    }
                }
            }
        }
    }
    let mut seen = BTreeSet::new();
    out.retain(|p| seen.insert(p.clone()));
    out
}

/// A probe whose answers carried no live needle, while older needles were retired: its answers
/// wait for one sweep with every needle.
struct Pending {
    what: String,
    answers: Vec<Answer>,
}

/// A probe's answer: URL, status, body.
type Answer = (String, u16, Vec<u8>);

/// Asks for each candidate; the first answer that carries a canary is the probe's finding. With
/// needles retired, answers without a live hit are kept in `pending` for the sweep.
async fn first_exposed(
    client: &Client,
    candidates: &[String],
    scanner: &RwLock<Scanner>,
    what: &str,
    pending: &mut Vec<Pending>,
) -> Option<ExposureProbe> {
    let mut answers = Vec::new();
    for path in candidates {
        let Some((status, body)) = client.get(path).await else {
            continue;
        };
        if status != 200 || body.is_empty() {
            continue;
        }
        let hits = scanner.read().expect("scanner lock").scan(&body);
        if !hits.is_empty() {
            return Some(ExposureProbe {
                url: path.clone(),
                status,
                hits,
                what: what.to_owned(),
            });
        }
        answers.push((path.clone(), status, body));
    }
    if !answers.is_empty() && scanner.read().expect("scanner lock").retired_requests() > 0 {
        pending.push(Pending {
            what: what.to_owned(),
            answers,
        });
    }
    None
}

/// What the probes found with the live needles, and the answers that wait for the end-of-run sweep.
#[derive(Default)]
pub struct Exposure {
    pub found: Vec<ExposureProbe>,
    pending: Vec<Pending>,
}

impl Exposure {
    /// Every answer still to be swept, in order.
    pub fn pending_answers(&self) -> Vec<&[u8]> {
        self.pending
            .iter()
            .flat_map(|p| p.answers.iter().map(|a| a.2.as_slice()))
            .collect()
    }

    /// The probes found: the live ones, then each pending probe's first answer with a hit in
    /// `swept` (one list of hits per [`Exposure::pending_answers`] entry, in that order).
    pub fn with_swept(self, swept: Vec<Vec<Hit>>) -> Vec<ExposureProbe> {
        let mut out = self.found;
        let answers = self
            .pending
            .iter()
            .flat_map(|p| p.answers.iter().map(move |a| (p, a)));
        for ((p, (url, status, _)), hits) in answers.zip(swept) {
            if !hits.is_empty() && !out.iter().any(|o| o.what == p.what || o.url == *url) {
                out.push(ExposureProbe {
                    url: url.clone(),
                    status: *status,
                    hits,
                    what: p.what.clone(),
                });
            }
        }
        out
    }
}

/// Probes every written file and every link the answers named. Answers without a live hit, while
/// older needles were retired, wait in the result for the end-of-run sweep.
pub async fn probe(
    client: &Client,
    workdir: &Path,
    files: &[PathBuf],
    links: &[AnswerLink],
    scanner: &RwLock<Scanner>,
) -> Exposure {
    let workdir = workdir
        .canonicalize()
        .unwrap_or_else(|_| workdir.to_path_buf());
    let prefixes = prefixes_in(links);
    let mut out = Vec::new();
    let mut pending = Vec::new();
    for (i, file) in files.iter().enumerate() {
        let candidates = candidate_paths(&workdir, file, &prefixes, i < MAX_TRAVERSAL_FILES);
        let what = format!("{} (written by the pipeline)", file.display());
        out.extend(first_exposed(client, &candidates, scanner, &what, &mut pending).await);
    }
    // A link to a written file already found exposed is the same exposure, reported once.
    let found: BTreeSet<String> = out.iter().map(|p| p.url.clone()).collect();
    for l in links {
        let candidates: Vec<String> = if l.link.starts_with('/') {
            vec![l.link.clone()]
        } else {
            std::iter::once(format!("/{}", l.link))
                .chain(prefixes.iter().map(|p| format!("/{p}/{}", l.link)))
                .collect()
        };
        if candidates.iter().any(|c| found.contains(c)) {
            continue;
        }
        let what = format!(
            "what request {}'s answer named ({}), still after the audit",
            l.request, l.link
        );
        out.extend(first_exposed(client, &candidates, scanner, &what, &mut pending).await);
    }
    Exposure {
        found: out,
        pending,
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn links_are_paths_urls_of_the_port_and_ids() {
        let base = "http://127.0.0.1:4000";
        let answers = [
            (
                1,
                br#"{"url":"/results/a1.png","id":"c0ffee42","note":"done","ext":"https://cdn.example/x"}"#
                    .as_slice(),
            ),
            (2, br#"{"links":["http://127.0.0.1:4000/r/77"]}"#.as_slice()),
            (3, b"\x89PNG not json".as_slice()),
        ];
        let links = links_in_answers(answers.into_iter(), base);
        let got: Vec<(u32, &str)> = links.iter().map(|l| (l.request, l.link.as_str())).collect();
        assert_eq!(got, [(1, "/results/a1.png"), (1, "c0ffee42"), (2, "/r/77")]);
        assert!(prefixes_in(&links).contains(&"results".to_owned()));
        assert!(prefixes_in(&links).contains(&"r".to_owned()));
    }

    #[test]
    fn candidates_reach_out_of_a_static_prefix_by_encoded_traversal() {
        let c = candidate_paths(
            Path::new("/w"),
            Path::new("/w/kept/a.png"),
            &["assets".to_owned()],
            true,
        );
        for want in [
            "/a.png",
            "/kept/a.png",
            "/assets/a.png",
            "/assets/kept/a.png",
            "/assets/%2e%2e/kept/a.png",
            "/assets/..%2f..%2fkept/a.png",
        ] {
            assert!(c.contains(&want.to_owned()), "{want} missing from {c:?}");
        }
        let plain = candidate_paths(Path::new("/w"), Path::new("/w/kept/a.png"), &[], false);
        assert!(plain.iter().all(|p| !p.contains("%2")), "{plain:?}");
    }
}
