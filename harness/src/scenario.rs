//! Scenario files (`scenarios/*.toml`): what requests to send, with which provider behaviour, and
//! what status each must get. Parsed once into [`Scenario`]; errors name the file, line and key.
//!
//! A scenario file is data that may come from anyone, so its values have limits, checked at load:
//! what a request makes in the harness's memory ([`MAX_IMAGE_BYTES`], [`MAX_GENERATED_PIXELS`]),
//! how many requests one entry sends ([`MAX_REQUESTS_PER_ENTRY`]), and which files it may send
//! (fixtures stay inside the fixtures folder unless the config allows outside paths).

use std::path::{Path, PathBuf};
use std::str::FromStr;

use serde::Deserialize;
use serde_spanned::Spanned;
use traceless_mock::Behaviour;

use crate::config::{FileError, Fixtures};

pub use traceless_judge::plan::{Age, ClientBehaviour, ScenarioPlan};

/// The most bytes a scenario image may have once made (`pad_to`, `bytes`): room for every size
/// case around the pipeline's 20 MiB limit, while the harness's copies of it stay small.
pub const MAX_IMAGE_BYTES: usize = 64 * 1024 * 1024;
/// The most pixels a generated image may have (above the reference pipeline's 40 megapixels).
pub const MAX_GENERATED_PIXELS: u64 = 50_000_000;
/// The longest pause before a batch (`pause_ms`): a minute.
const MAX_PAUSE_MS: u64 = 60_000;

/// The most requests one `[[request]]` entry may ask for, as `repeat` times `concurrency`.
pub const MAX_REQUESTS_PER_ENTRY: u64 = 1024;

#[derive(Debug, Clone)]
pub struct Scenario {
    pub id: String,
    pub title: String,
    pub clauses: Vec<String>,
    pub requests: Vec<RequestSpec>,
    pub path: PathBuf,
}

impl Scenario {
    /// What judging needs of it: its id, title, clauses and how many requests it holds.
    pub fn plan(&self) -> ScenarioPlan {
        ScenarioPlan {
            id: self.id.clone(),
            title: self.title.clone(),
            clauses: self.clauses.clone(),
            requests: self.requests.iter().map(|r| r.repeat).sum(),
        }
    }
}

#[derive(Debug, Clone)]
pub struct RequestSpec {
    /// `openai` or `gemini`; anything else is sent as is (an unknown-provider case).
    pub provider: String,
    pub image: ImageSpec,
    pub prompt: PromptSpec,
    pub age: Age,
    pub provider_behaviour: Vec<Behaviour>,
    pub client: ClientBehaviour,
    pub expect_status: Option<u16>,
    pub repeat: u32,
    pub concurrency: u32,
    pub content_type: Option<String>,
    /// Waited before each batch of this request: a user's pause between requests.
    pub pause: std::time::Duration,
}

#[derive(Debug, Clone, PartialEq)]
pub enum ImageSource {
    Generate {
        format: traceless_scan::canary::ImageFormat,
        width: u32,
        height: u32,
    },
    Fixture(PathBuf),
    Raw(Vec<u8>),
}

#[derive(Debug, Clone, PartialEq)]
pub struct ImageSpec {
    pub source: ImageSource,
    pub metadata: bool,
    pub truncate: Option<usize>,
    pub pad_to: Option<usize>,
}

#[derive(Debug, Clone, PartialEq)]
pub enum PromptSpec {
    /// The text, with a fresh marker per request.
    Text(String),
    Length(usize),
    Bytes(Vec<u8>),
    /// The same text in every request, with no marker: two users sending the same prompt. Where
    /// such a prompt goes cannot be told per request, so it is not looked for.
    Shared(String),
}

#[derive(Deserialize)]
#[serde(deny_unknown_fields)]
struct RawScenario {
    id: Spanned<String>,
    title: String,
    #[serde(default)]
    clauses: Vec<String>,
    request: Vec<Spanned<RawRequest>>,
}

#[derive(Deserialize)]
#[serde(deny_unknown_fields)]
struct RawRequest {
    provider: Spanned<String>,
    image: Option<Spanned<RawImage>>,
    prompt: Option<String>,
    prompt_len: Option<usize>,
    prompt_bytes: Option<Spanned<String>>,
    shared_prompt: Option<String>,
    pause_ms: Option<Spanned<u64>>,
    age_confirmed: Option<Spanned<toml::Value>>,
    #[serde(default)]
    provider_behaviour: Vec<Spanned<String>>,
    client: Option<Spanned<String>>,
    expect_status: Option<u16>,
    repeat: Option<Spanned<u32>>,
    concurrency: Option<Spanned<u32>>,
    content_type: Option<String>,
}

#[derive(Deserialize)]
#[serde(deny_unknown_fields)]
struct RawImage {
    generate: Option<String>,
    width: Option<u32>,
    height: Option<u32>,
    fixture: Option<String>,
    raw: Option<String>,
    bytes: Option<usize>,
    #[serde(default)]
    metadata: bool,
    truncate: Option<usize>,
    pad_to: Option<usize>,
}

/// Loads every scenario matching `patterns` (globs relative to `base`), optionally only those
/// whose id matches `select` (a glob over ids). Ids must be unique.
pub fn load_all(
    base: &Path,
    patterns: &[String],
    select: Option<&str>,
    fixtures: &Fixtures,
) -> anyhow::Result<Vec<Scenario>> {
    let mut files = Vec::new();
    for pattern in patterns {
        let full = base.join(pattern);
        let matched = glob_files(&full)?;
        files.extend(matched);
    }
    files.sort();
    files.dedup();
    let mut out: Vec<Scenario> = Vec::new();
    for file in files {
        let s = load(&file, fixtures)?;
        if let Some(prev) = out.iter().find(|o| o.id == s.id) {
            anyhow::bail!(
                "{}: scenario id {:?} is also used by {}",
                file.display(),
                s.id,
                prev.path.display()
            );
        }
        out.push(s);
    }
    if let Some(sel) = select {
        out.retain(|s| {
            glob_match(sel, &s.id)
                || s.path
                    .file_name()
                    .is_some_and(|n| glob_match(sel, &n.to_string_lossy()))
        });
        if out.is_empty() {
            anyhow::bail!("--scenario {sel:?} matches no scenario");
        }
    }
    Ok(out)
}

/// Parses one scenario file.
pub fn load(path: &Path, fixtures: &Fixtures) -> Result<Scenario, FileError> {
    let source = std::fs::read_to_string(path)
        .map_err(|e| FileError::new(path, None, None, format!("cannot read the scenario: {e}")))?;
    parse(path, &source, fixtures)
}

pub fn parse(path: &Path, source: &str, fixtures: &Fixtures) -> Result<Scenario, FileError> {
    let raw: RawScenario =
        toml::from_str(source).map_err(|e| FileError::from_toml(path, source, &e))?;
    let err = |span: std::ops::Range<usize>, key: &str, msg: String| {
        FileError::at_span(path, source, span, key, msg)
    };
    let id_ok = !raw.id.get_ref().is_empty()
        && raw
            .id
            .get_ref()
            .chars()
            .all(|c| c.is_ascii_lowercase() || c.is_ascii_digit() || c == '-');
    if !id_ok {
        return Err(err(
            raw.id.span(),
            "id",
            format!(
                "{:?}: use lowercase letters, digits and `-`",
                raw.id.get_ref()
            ),
        ));
    }
    if raw.request.is_empty() {
        return Err(FileError::new(
            path,
            None,
            Some("request"),
            "a scenario needs at least one [[request]]",
        ));
    }
    let mut requests = Vec::new();
    for r in raw.request {
        let span = r.span();
        let r = r.into_inner();
        let image = match r.image {
            None => ImageSpec {
                source: ImageSource::Generate {
                    format: traceless_scan::canary::ImageFormat::Png,
                    width: 64,
                    height: 48,
                },
                metadata: false,
                truncate: None,
                pad_to: None,
            },
            Some(img) => {
                let s = img.span();
                image_spec(img.into_inner(), fixtures).map_err(|m| err(s, "request.image", m))?
            }
        };
        let prompt =
            match (r.prompt, r.prompt_len, r.prompt_bytes, r.shared_prompt) {
                (p, None, None, None) => PromptSpec::Text(
                    p.unwrap_or_else(|| "Turn this photo into a watercolour".to_owned()),
                ),
                (None, Some(n), None, None) => PromptSpec::Length(n),
                (None, None, None, Some(text)) => PromptSpec::Shared(text),
                (None, None, Some(hex), None) => {
                    let s = hex.span();
                    let clean: String = hex.into_inner().split_whitespace().collect();
                    PromptSpec::Bytes(hex::decode(&clean).map_err(|e| {
                        err(s, "request.prompt_bytes", format!("not hex bytes: {e}"))
                    })?)
                }
                _ => {
                    return Err(err(
                        span,
                        "request.prompt",
                        "set only one of prompt, prompt_len, prompt_bytes, shared_prompt".into(),
                    ));
                }
            };
        let age = match r.age_confirmed {
            None => Age::Confirmed,
            Some(v) => match v.get_ref() {
                toml::Value::Boolean(true) => Age::Confirmed,
                toml::Value::Boolean(false) => Age::Omitted,
                toml::Value::String(s) if s == "no" => Age::Denied,
                other => {
                    return Err(err(
                        v.span(),
                        "request.age_confirmed",
                        format!("{other}: expected true, false (omitted) or \"no\""),
                    ));
                }
            },
        };
        let mut provider_behaviour = Vec::new();
        for b in r.provider_behaviour {
            let parsed = Behaviour::from_str(b.get_ref()).map_err(|e| {
                err(
                    b.span(),
                    "request.provider_behaviour",
                    format!("{:?}: {e}; expected ok, 429, 500, 503, timeout, safety-block, malformed or slow", b.get_ref()),
                )
            })?;
            provider_behaviour.push(parsed);
        }
        if provider_behaviour.is_empty() {
            provider_behaviour.push(Behaviour::Ok);
        }
        let client = match r.client {
            None => ClientBehaviour::Normal,
            Some(c) => match c.get_ref().as_str() {
                "normal" => ClientBehaviour::Normal,
                "disconnect-upload" => ClientBehaviour::DisconnectUpload,
                "disconnect-response" => ClientBehaviour::DisconnectResponse,
                other => {
                    return Err(err(
                        c.span(),
                        "request.client",
                        format!(
                            "{other:?}: expected normal, disconnect-upload or disconnect-response"
                        ),
                    ));
                }
            },
        };
        let (repeat_span, repeat_key) = match (&r.repeat, &r.concurrency) {
            (Some(n), _) => (n.span(), "request.repeat"),
            (None, Some(n)) => (n.span(), "request.concurrency"),
            (None, None) => (span.clone(), "request.repeat"),
        };
        let pause = match r.pause_ms {
            Some(p) if *p.get_ref() > MAX_PAUSE_MS => {
                return Err(err(
                    p.span(),
                    "request.pause_ms",
                    format!("{} ms: at most {MAX_PAUSE_MS} ms", p.get_ref()),
                ));
            }
            p => std::time::Duration::from_millis(p.map_or(0, Spanned::into_inner)),
        };
        let repeat = r.repeat.map_or(1, Spanned::into_inner).max(1);
        let concurrency = r.concurrency.map_or(1, Spanned::into_inner).max(1);
        if u64::from(repeat) * u64::from(concurrency) > MAX_REQUESTS_PER_ENTRY {
            return Err(err(
                repeat_span,
                repeat_key,
                format!(
                    "repeat = {repeat} with concurrency = {concurrency} asks for {} requests; \
                     the limit is {MAX_REQUESTS_PER_ENTRY} (repeat times concurrency)",
                    u64::from(repeat) * u64::from(concurrency)
                ),
            ));
        }
        requests.push(RequestSpec {
            provider: r.provider.into_inner(),
            image,
            prompt,
            age,
            provider_behaviour,
            client,
            expect_status: r.expect_status,
            repeat,
            concurrency,
            content_type: r.content_type,
            pause,
        });
    }
    Ok(Scenario {
        id: raw.id.into_inner(),
        title: raw.title,
        clauses: raw.clauses,
        requests,
        path: path.to_path_buf(),
    })
}

fn image_spec(raw: RawImage, fixtures: &Fixtures) -> Result<ImageSpec, String> {
    use traceless_scan::canary::ImageFormat;
    let source = match (raw.generate, raw.fixture, raw.raw, raw.bytes) {
        (Some(f), None, None, None) => {
            let format = match f.as_str() {
                "png" => ImageFormat::Png,
                "jpeg" | "jpg" => ImageFormat::Jpeg,
                "webp" => ImageFormat::Webp,
                other => {
                    return Err(format!(
                        "generate = {other:?}: expected \"png\", \"jpeg\" or \"webp\""
                    ));
                }
            };
            let (width, height) = (raw.width.unwrap_or(64), raw.height.unwrap_or(48));
            if u64::from(width) * u64::from(height) > MAX_GENERATED_PIXELS {
                return Err(format!(
                    "{width}x{height} is {} pixels; the limit is {MAX_GENERATED_PIXELS}",
                    u64::from(width) * u64::from(height)
                ));
            }
            ImageSource::Generate {
                format,
                width,
                height,
            }
        }
        (None, Some(f), None, None) => ImageSource::Fixture(fixture_path(&f, fixtures)?),
        (None, None, Some(text), None) => ImageSource::Raw(text.into_bytes()),
        (None, None, None, Some(n)) => {
            within_image_limit("bytes", n)?;
            ImageSource::Raw(vec![b'x'; n])
        }
        _ => return Err("set exactly one of generate, fixture, raw or bytes".into()),
    };
    if let Some(n) = raw.pad_to {
        within_image_limit("pad_to", n)?;
    }
    Ok(ImageSpec {
        source,
        metadata: raw.metadata,
        truncate: raw.truncate,
        pad_to: raw.pad_to,
    })
}

fn within_image_limit(key: &str, n: usize) -> Result<(), String> {
    if n > MAX_IMAGE_BYTES {
        return Err(format!(
            "{key} = {n}: the limit is {MAX_IMAGE_BYTES} bytes (64 MiB)"
        ));
    }
    Ok(())
}

/// The file a `fixture = "..."` names, resolved (links and `..` followed) and, unless outside
/// paths are allowed, inside the fixtures folder.
fn fixture_path(name: &str, fixtures: &Fixtures) -> Result<PathBuf, String> {
    let joined = fixtures.dir.join(name);
    let resolved = std::fs::canonicalize(&joined)
        .ok()
        .filter(|p| p.is_file())
        .ok_or_else(|| format!("fixture {name:?}: no file at {}", joined.display()))?;
    if !fixtures.allow_outside {
        let root = std::fs::canonicalize(&fixtures.dir).map_err(|e| {
            format!(
                "fixture {name:?}: the fixtures folder {} cannot be resolved: {e}",
                fixtures.dir.display()
            )
        })?;
        if !resolved.starts_with(&root) {
            return Err(format!(
                "fixture {name:?} is {}, outside the fixtures folder {}; \
                 set `[audit] allow_outside_fixtures = true` in the config to allow it",
                resolved.display(),
                root.display()
            ));
        }
    }
    Ok(resolved)
}

fn glob_files(pattern: &Path) -> anyhow::Result<Vec<PathBuf>> {
    let dir = pattern.parent().unwrap_or(Path::new("."));
    let name = pattern
        .file_name()
        .map(|n| n.to_string_lossy().into_owned())
        .unwrap_or_default();
    if !name.contains('*') && !name.contains('?') {
        return Ok(if pattern.is_file() {
            vec![pattern.to_path_buf()]
        } else {
            Vec::new()
        });
    }
    let entries = match std::fs::read_dir(dir) {
        Ok(e) => e,
        Err(e) if e.kind() == std::io::ErrorKind::NotFound => return Ok(Vec::new()),
        Err(e) => return Err(anyhow::anyhow!("cannot list {}: {e}", dir.display())),
    };
    let mut out = Vec::new();
    for entry in entries {
        let entry = entry?;
        if glob_match(&name, &entry.file_name().to_string_lossy()) && entry.path().is_file() {
            out.push(entry.path());
        }
    }
    Ok(out)
}

/// `*` and `?` wildcards over a whole name.
pub fn glob_match(pattern: &str, text: &str) -> bool {
    fn go(p: &[u8], t: &[u8]) -> bool {
        match (p.first(), t.first()) {
            (None, None) => true,
            (Some(b'*'), _) => go(&p[1..], t) || (!t.is_empty() && go(p, &t[1..])),
            (Some(b'?'), Some(_)) => go(&p[1..], &t[1..]),
            (Some(a), Some(b)) if a == b => go(&p[1..], &t[1..]),
            _ => false,
        }
    }
    go(pattern.as_bytes(), text.as_bytes())
}

#[cfg(test)]
mod tests {
    use super::*;

    fn check_err(source: &str, expect_line: usize, expect_in_msg: &str) {
        let err = parse(
            Path::new("scenarios/x.toml"),
            source,
            &Fixtures::confined_to("fixtures"),
        )
        .unwrap_err();
        assert_eq!(err.line, Some(expect_line), "{err}");
        assert!(err.to_string().contains(expect_in_msg), "{err}");
    }

    const HEAD: &str = "id = \"a\"\ntitle = \"t\"\n[[request]]\nprovider = \"openai\"\n";

    #[test]
    fn sizes_and_counts_beyond_their_limits_are_refused_at_their_line() {
        check_err(
            &format!("{HEAD}image = {{ generate = \"png\", pad_to = 1073741824 }}\n"),
            5,
            "scenarios/x.toml:5: `request.image`: pad_to = 1073741824: the limit is 67108864",
        );
        check_err(
            &format!("{HEAD}image = {{ bytes = 67108865 }}\n"),
            5,
            "`request.image`: bytes = 67108865",
        );
        check_err(
            &format!("{HEAD}image = {{ generate = \"png\", width = 100000, height = 100000 }}\n"),
            5,
            "the limit is 50000000",
        );
        check_err(
            &format!("{HEAD}expect_status = 200\nrepeat = 100\nconcurrency = 11\n"),
            6,
            "`request.repeat`: repeat = 100 with concurrency = 11 asks for 1100 requests",
        );
        check_err(
            &format!("{HEAD}concurrency = 2000\n"),
            5,
            "`request.concurrency`",
        );
    }

    #[test]
    fn sizes_and_counts_at_their_limits_are_accepted() {
        let fixtures = Fixtures::confined_to("fixtures");
        let source = format!(
            "{HEAD}image = {{ generate = \"png\", pad_to = {MAX_IMAGE_BYTES} }}\nrepeat = 64\nconcurrency = 16\n"
        );
        let s = parse(Path::new("scenarios/x.toml"), &source, &fixtures).unwrap();
        assert_eq!(s.requests[0].image.pad_to, Some(MAX_IMAGE_BYTES));
        assert_eq!((s.requests[0].repeat, s.requests[0].concurrency), (64, 16));
    }

    /// A fixtures folder holding `inside.png` and a link `escape.png` to a file beside it.
    fn fixture_tree() -> (tempfile::TempDir, Fixtures) {
        let root = tempfile::tempdir().unwrap();
        let dir = root.path().join("fixtures");
        std::fs::create_dir(&dir).unwrap();
        std::fs::write(dir.join("inside.png"), b"png").unwrap();
        std::fs::write(root.path().join("secret.png"), b"secret").unwrap();
        std::os::unix::fs::symlink(root.path().join("secret.png"), dir.join("escape.png")).unwrap();
        (root, Fixtures::confined_to(dir))
    }

    fn fixture_result(fixtures: &Fixtures, name: &str) -> Result<Scenario, FileError> {
        let source = format!("{HEAD}image = {{ fixture = {name:?} }}\n");
        parse(Path::new("scenarios/x.toml"), &source, fixtures)
    }

    #[test]
    fn fixtures_outside_the_fixtures_folder_are_refused() {
        let (root, fixtures) = fixture_tree();
        let outside = root.path().join("secret.png");
        for name in [
            "../secret.png",
            "escape.png",
            outside.to_str().unwrap(),
            "/etc/hostname",
        ] {
            if name == "/etc/hostname" && !Path::new(name).is_file() {
                continue;
            }
            let err = fixture_result(&fixtures, name).unwrap_err();
            assert_eq!(err.line, Some(5), "{name}: {err}");
            assert_eq!(err.key.as_deref(), Some("request.image"), "{name}: {err}");
            assert!(
                err.message.contains("outside the fixtures folder")
                    && err.message.contains("allow_outside_fixtures = true"),
                "{name}: {err}"
            );
        }
        let ok = fixture_result(&fixtures, "inside.png").unwrap();
        assert_eq!(
            ok.requests[0].image.source,
            ImageSource::Fixture(std::fs::canonicalize(fixtures.dir.join("inside.png")).unwrap())
        );
        // `..` that stays inside the folder is still inside it.
        std::fs::create_dir(fixtures.dir.join("sub")).unwrap();
        assert!(fixture_result(&fixtures, "sub/../inside.png").is_ok());
    }

    #[test]
    fn fixtures_outside_are_taken_when_the_config_allows_them() {
        let (root, mut fixtures) = fixture_tree();
        fixtures.allow_outside = true;
        let s = fixture_result(&fixtures, "../secret.png").unwrap();
        assert_eq!(
            s.requests[0].image.source,
            ImageSource::Fixture(std::fs::canonicalize(root.path().join("secret.png")).unwrap())
        );
        let err = fixture_result(&fixtures, "../missing.png").unwrap_err();
        assert!(err.message.contains("no file at"), "{err}");
    }

    #[test]
    fn a_full_request_parses() {
        let s = parse(
            Path::new("scenarios/a.toml"),
            "id = \"a\"\ntitle = \"t\"\nclauses = [\"1\"]\n[[request]]\nprovider = \"gemini\"\n\
             image = { generate = \"webp\", width = 10, height = 12, metadata = true }\n\
             provider_behaviour = [\"429\", \"ok\"]\nexpect_status = 429\nrepeat = 3\nage_confirmed = \"no\"\n",
            &Fixtures::confined_to("fixtures"),
        )
        .unwrap();
        let r = &s.requests[0];
        assert_eq!(r.provider, "gemini");
        assert_eq!(r.repeat, 3);
        assert_eq!(r.age, Age::Denied);
        assert_eq!(r.provider_behaviour.len(), 2);
        assert!(r.image.metadata);
    }

    #[test]
    fn a_shared_prompt_and_a_pause_parse_and_a_long_pause_is_refused() {
        let s = parse(
            Path::new("scenarios/a.toml"),
            "id = \"a\"\ntitle = \"t\"\n[[request]]\nprovider = \"openai\"\n\
             shared_prompt = \"same for all\"\npause_ms = 250\n",
            &Fixtures::confined_to("fixtures"),
        )
        .unwrap();
        let r = &s.requests[0];
        assert_eq!(r.prompt, PromptSpec::Shared("same for all".into()));
        assert_eq!(r.pause, std::time::Duration::from_millis(250));
        check_err(
            "id = \"a\"\ntitle = \"t\"\n[[request]]\nprovider = \"openai\"\npause_ms = 600000\n",
            5,
            "`request.pause_ms`: 600000 ms: at most 60000 ms",
        );
        check_err(
            "id = \"a\"\ntitle = \"t\"\n[[request]]\nprovider = \"openai\"\nprompt = \"x\"\nshared_prompt = \"y\"\n",
            3,
            "set only one of prompt, prompt_len, prompt_bytes, shared_prompt",
        );
    }

    #[test]
    fn mistakes_are_reported_at_their_line() {
        check_err(
            "id = \"a\"\ntitle = \"t\"\n[[request]]\nprovider = \"openai\"\nprovider_behaviour = [\"418\"]\n",
            5,
            "\"418\"",
        );
        check_err(
            "id = \"A b\"\ntitle = \"t\"\n[[request]]\nprovider = \"openai\"\n",
            1,
            "lowercase",
        );
        check_err(
            "id = \"a\"\ntitle = \"t\"\n[[request]]\nprovider = \"openai\"\nclient = \"vanish\"\n",
            5,
            "disconnect-upload",
        );
        check_err(
            "id = \"a\"\ntitle = \"t\"\n[[request]]\nprovider = \"openai\"\nimage = { fixture = \"nope.png\" }\n",
            5,
            "no file at",
        );
        check_err(
            "id = \"a\"\ntitle = \"t\"\n[[request]]\nprovder = \"openai\"\n",
            4,
            "provder",
        );
    }

    #[test]
    fn globs() {
        assert!(glob_match("*.toml", "a.toml"));
        assert!(glob_match("openai-*", "openai-429"));
        assert!(!glob_match("openai-*", "gemini-429"));
        assert!(glob_match("a?c", "abc"));
    }
}
