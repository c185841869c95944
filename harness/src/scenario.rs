//! Scenario files (`scenarios/*.toml`): what requests to send, with which provider behaviour, and
//! what status each must get. Parsed once into [`Scenario`]; errors name the file, line and key.

use std::path::{Path, PathBuf};
use std::str::FromStr;

use serde::Deserialize;
use serde_spanned::Spanned;
use traceless_mock::Behaviour;

use crate::config::FileError;

#[derive(Debug, Clone)]
pub struct Scenario {
    pub id: String,
    pub title: String,
    pub clauses: Vec<String>,
    pub requests: Vec<RequestSpec>,
    pub path: PathBuf,
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
    Text(String),
    Length(usize),
    Bytes(Vec<u8>),
}

#[derive(Debug, Clone, Copy, PartialEq, Eq, serde::Serialize)]
#[serde(rename_all = "kebab-case")]
pub enum Age {
    Confirmed,
    Omitted,
    Denied,
}

#[derive(Debug, Clone, Copy, PartialEq, Eq, serde::Serialize)]
#[serde(rename_all = "kebab-case")]
pub enum ClientBehaviour {
    Normal,
    DisconnectUpload,
    DisconnectResponse,
}

impl ClientBehaviour {
    pub fn label(self) -> &'static str {
        match self {
            Self::Normal => "normal",
            Self::DisconnectUpload => "disconnect-upload",
            Self::DisconnectResponse => "disconnect-response",
        }
    }
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
    age_confirmed: Option<Spanned<toml::Value>>,
    #[serde(default)]
    provider_behaviour: Vec<Spanned<String>>,
    client: Option<Spanned<String>>,
    expect_status: Option<u16>,
    repeat: Option<u32>,
    concurrency: Option<u32>,
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
    fixtures: &Path,
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
pub fn load(path: &Path, fixtures: &Path) -> Result<Scenario, FileError> {
    let source = std::fs::read_to_string(path)
        .map_err(|e| FileError::new(path, None, None, format!("cannot read the scenario: {e}")))?;
    parse(path, &source, fixtures)
}

pub fn parse(path: &Path, source: &str, fixtures: &Path) -> Result<Scenario, FileError> {
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
            match (r.prompt, r.prompt_len, r.prompt_bytes) {
                (p, None, None) => PromptSpec::Text(
                    p.unwrap_or_else(|| "Turn this photo into a watercolour".to_owned()),
                ),
                (None, Some(n), None) => PromptSpec::Length(n),
                (None, None, Some(hex)) => {
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
                        "set only one of prompt, prompt_len, prompt_bytes".into(),
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
        requests.push(RequestSpec {
            provider: r.provider.into_inner(),
            image,
            prompt,
            age,
            provider_behaviour,
            client,
            expect_status: r.expect_status,
            repeat: r.repeat.unwrap_or(1).max(1),
            concurrency: r.concurrency.unwrap_or(1).max(1),
            content_type: r.content_type,
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

fn image_spec(raw: RawImage, fixtures: &Path) -> Result<ImageSpec, String> {
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
            ImageSource::Generate {
                format,
                width: raw.width.unwrap_or(64),
                height: raw.height.unwrap_or(48),
            }
        }
        (None, Some(f), None, None) => {
            let p = fixtures.join(&f);
            if !p.is_file() {
                return Err(format!("fixture {f:?}: no file at {}", p.display()));
            }
            ImageSource::Fixture(p)
        }
        (None, None, Some(text), None) => ImageSource::Raw(text.into_bytes()),
        (None, None, None, Some(n)) => ImageSource::Raw(vec![b'x'; n]),
        _ => return Err("set exactly one of generate, fixture, raw or bytes".into()),
    };
    Ok(ImageSpec {
        source,
        metadata: raw.metadata,
        truncate: raw.truncate,
        pad_to: raw.pad_to,
    })
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
        let err = parse(Path::new("scenarios/x.toml"), source, Path::new("fixtures")).unwrap_err();
        assert_eq!(err.line, Some(expect_line), "{err}");
        assert!(err.to_string().contains(expect_in_msg), "{err}");
    }

    #[test]
    fn a_full_request_parses() {
        let s = parse(
            Path::new("scenarios/a.toml"),
            "id = \"a\"\ntitle = \"t\"\nclauses = [\"1\"]\n[[request]]\nprovider = \"gemini\"\n\
             image = { generate = \"webp\", width = 10, height = 12, metadata = true }\n\
             provider_behaviour = [\"429\", \"ok\"]\nexpect_status = 429\nrepeat = 3\nage_confirmed = \"no\"\n",
            Path::new("fixtures"),
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
