//! `traceless init [DIR]`: the starter kit for auditing a team's own backend.
//!
//! It writes a commented `traceless.toml` (a `QUESTION:` comment above every value only the team
//! can give), the shipped policy and clause map as a starting point for their own, the scenario
//! library (generic scenarios per provider in `scenarios/`, the reference library in
//! `scenarios/reference/`) and a GitHub Actions workflow. The request mapping is either the
//! common multipart shape or, with `--from-curl`, drawn from a curl command line the team already
//! uses ([`CurlRequest::parse`]). Nothing is overwritten unless asked.

use std::path::{Path, PathBuf};

use anyhow::Context as _;

use crate::assets;

const CONFIG_TEMPLATE: &str = include_str!("init/traceless.toml");
const WORKFLOW_TEMPLATE: &str = include_str!("init/workflow.yml");

/// The marker of a blank or a guess the team must answer.
pub const QUESTION: &str = "QUESTION:";

/// `traceless init [DIR] [--from-curl CMD] [--force]`.
#[derive(clap::Args)]
pub struct InitArgs {
    /// Where to write the kit (created if missing).
    #[arg(default_value = ".")]
    dir: PathBuf,
    /// A curl command line that sends your backend a generation request, e.g.
    /// 'curl -F image=@p.png -F prompt=hi http://localhost:8000/edit': the request mapping is drawn
    /// from it (its -F fields or -d JSON, -H headers, -X, and the URL's route and port).
    #[arg(long, value_name = "CURL")]
    from_curl: Option<String>,
    /// Replace files that are already there.
    #[arg(long)]
    force: bool,
}

/// Writes the kit and says what to answer next; exit code 0, or an error.
pub fn command(args: &InitArgs) -> anyhow::Result<u8> {
    let written = write_kit(&args.dir, args.from_curl.as_deref(), args.force)?;
    let config = args.dir.join("traceless.toml");
    println!("wrote {} files into {}", written.len(), args.dir.display());
    let text = std::fs::read_to_string(&config)
        .with_context(|| format!("reading {}", config.display()))?;
    let asked = questions(&text);
    println!(
        "{} has {} questions (lines marked {QUESTION}):",
        config.display(),
        asked.len()
    );
    for (line, question) in asked {
        println!("  {}:{line}: {question}", config.display());
    }
    println!(
        "then: traceless audit --config {} --out reports/latest",
        config.display()
    );
    Ok(0)
}

/// Writes the starter kit into `dir` (created if missing) and returns the files written.
pub fn write_kit(dir: &Path, from_curl: Option<&str>, force: bool) -> anyhow::Result<Vec<PathBuf>> {
    let request = from_curl.map(CurlRequest::parse).transpose()?;
    let mut files: Vec<(PathBuf, Vec<u8>)> = vec![
        (
            PathBuf::from("traceless.toml"),
            config_text(request.as_ref()).into_bytes(),
        ),
        (
            PathBuf::from(".github/workflows/traceless.yml"),
            WORKFLOW_TEMPLATE.as_bytes().to_vec(),
        ),
    ];
    for (name, bytes) in assets::files_under("policy") {
        files.push((Path::new("policy").join(name), bytes.to_vec()));
    }
    for (name, bytes) in assets::files_under("starter") {
        files.push((Path::new("scenarios").join(name), bytes.to_vec()));
    }
    for (name, bytes) in assets::files_under("scenarios") {
        files.push((Path::new("scenarios/reference").join(name), bytes.to_vec()));
    }
    if !force {
        let existing: Vec<String> = files
            .iter()
            .map(|(rel, _)| dir.join(rel))
            .filter(|p| p.exists())
            .map(|p| p.display().to_string())
            .collect();
        if !existing.is_empty() {
            anyhow::bail!(
                "not overwriting what is there ({}); pass --force to replace it",
                existing.join(", ")
            );
        }
    }
    let mut written = Vec::new();
    for (rel, bytes) in files {
        let path = dir.join(rel);
        if let Some(parent) = path.parent() {
            std::fs::create_dir_all(parent)
                .with_context(|| format!("creating {}", parent.display()))?;
        }
        std::fs::write(&path, bytes).with_context(|| format!("writing {}", path.display()))?;
        written.push(path);
    }
    Ok(written)
}

/// The starter `traceless.toml`, its request mapping drawn from `request` when given.
pub fn config_text(request: Option<&CurlRequest>) -> String {
    let port_note = match request.and_then(|r| r.port) {
        Some(port) => format!(
            "\n# Your curl command reached it on port {port}: make that port come from a variable here."
        ),
        None => String::new(),
    };
    CONFIG_TEMPLATE
        .replace("{{PORT_NOTE}}", &port_note)
        .replace("{{REQUEST}}", &request_section(request))
}

/// The questions left in a kit's config: (line number, the question's text).
pub fn questions(config: &str) -> Vec<(usize, String)> {
    config
        .lines()
        .enumerate()
        .filter_map(|(i, l)| {
            let (_, q) = l.split_once(QUESTION)?;
            Some((i + 1, q.trim().to_owned()))
        })
        .collect()
}

/// A request as a curl command line sends it, reduced to what `[pipeline.request]` needs.
#[derive(Debug, Clone, Default, PartialEq, Eq)]
pub struct CurlRequest {
    pub method: Option<String>,
    /// The URL's path and query.
    pub route: String,
    pub port: Option<u16>,
    pub json: bool,
    /// Every field sent, in order: name and value (`@file` for a file part).
    pub fields: Vec<(String, FieldValue)>,
    pub headers: Vec<(String, String)>,
}

#[derive(Debug, Clone, PartialEq, Eq)]
pub enum FieldValue {
    /// A file part (`-F name=@photo.png`).
    File,
    Text(String),
    /// A JSON value other than a string (`true`, `3`, ...), as JSON text.
    Json(String),
}

/// What a field of the team's request is, as far as its name and value tell.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
enum Role {
    Image(ImageShape),
    Prompt,
    Provider,
    Age,
    Other,
}

#[derive(Debug, Clone, Copy, PartialEq, Eq)]
enum ImageShape {
    File,
    Base64,
    DataUrl,
}

/// curl options that take a value, besides those read here (so the value is not the URL).
const CURL_OPTS_WITH_VALUE: &[&str] = &[
    "-o",
    "--output",
    "-u",
    "--user",
    "-A",
    "--user-agent",
    "-e",
    "--referer",
    "-m",
    "--max-time",
    "--connect-timeout",
    "-w",
    "--write-out",
    "-x",
    "--proxy",
    "--cacert",
    "--cert",
    "--key",
    "-b",
    "--cookie",
    "-c",
    "--cookie-jar",
    "--retry",
    "--resolve",
    "--connect-to",
    "-K",
    "--config",
    "--limit-rate",
    "-r",
    "--range",
    "-T",
    "--upload-file",
];

impl CurlRequest {
    /// Parses a curl command line (as a shell would split it): `-F`/`--form` fields (`name=@file`
    /// is the file part), `-H`/`--header`, `-d`/`--data*`/`--json` with a JSON object, `-X`, and
    /// the URL's route and port. Options that do not shape the request are skipped.
    pub fn parse(cmdline: &str) -> anyhow::Result<CurlRequest> {
        let words = shlex::split(cmdline).with_context(|| {
            format!("--from-curl: cannot split {cmdline:?} as a shell would (an unclosed quote?)")
        })?;
        let mut words = words.into_iter().peekable();
        if words
            .peek()
            .is_some_and(|w| w == "curl" || w.ends_with("/curl"))
        {
            words.next();
        }
        let mut req = CurlRequest::default();
        let mut url = None;
        let mut data: Option<String> = None;
        let mut form = false;
        while let Some(word) = words.next() {
            // `--opt=value` is the same as `--opt value`.
            let (opt, inline) = match word.split_once('=') {
                Some((o, v)) if o.starts_with("--") => (o.to_owned(), Some(v.to_owned())),
                _ => (word.clone(), None),
            };
            let mut value = |name: &str| -> anyhow::Result<String> {
                match inline.clone().or_else(|| words.next()) {
                    Some(v) => Ok(v),
                    None => anyhow::bail!("--from-curl: {name} needs a value"),
                }
            };
            match opt.as_str() {
                "-F" | "--form" | "--form-string" => {
                    form = true;
                    let v = value(&opt)?;
                    let Some((name, val)) = v.split_once('=') else {
                        anyhow::bail!(
                            "--from-curl: {opt} {v:?}: expected name=value or name=@file"
                        );
                    };
                    let field = if opt != "--form-string" && val.starts_with('@') {
                        FieldValue::File
                    } else {
                        // `-F 'name=value;type=text/plain'`: the value ends at the `;`.
                        let text = if opt == "--form-string" {
                            val
                        } else {
                            val.split(';').next().unwrap_or(val)
                        };
                        FieldValue::Text(text.to_owned())
                    };
                    req.fields.push((name.to_owned(), field));
                }
                "-H" | "--header" => {
                    let v = value(&opt)?;
                    let Some((name, val)) = v.split_once(':') else {
                        anyhow::bail!("--from-curl: {opt} {v:?}: expected \"Name: value\"");
                    };
                    let name = name.trim();
                    if name.eq_ignore_ascii_case("content-type") {
                        req.json |= val.contains("json");
                        continue; // the audit sets it from the body it sends
                    }
                    req.headers.push((name.to_owned(), val.trim().to_owned()));
                }
                "-d" | "--data" | "--data-raw" | "--data-binary" | "--data-ascii" => {
                    data = Some(value(&opt)?);
                }
                "--json" => {
                    data = Some(value(&opt)?);
                    req.json = true;
                }
                "-X" | "--request" => req.method = Some(value(&opt)?.to_ascii_uppercase()),
                "--url" => url = Some(value(&opt)?),
                o if CURL_OPTS_WITH_VALUE.contains(&o) => {
                    value(o)?;
                }
                o if o.starts_with('-') && o.len() > 1 => {} // a flag: -s, -v, -L, --compressed ...
                _ => {
                    if url.is_some() {
                        anyhow::bail!(
                            "--from-curl: two URLs ({} and {word}); give one request",
                            url.unwrap_or_default()
                        );
                    }
                    url = Some(word);
                }
            }
        }
        let url = url.context("--from-curl: the command names no URL")?;
        (req.route, req.port) = route_and_port(&url)?;
        if let Some(data) = data {
            if form {
                anyhow::bail!("--from-curl: both -F and -d: a request has one body");
            }
            if let Some(file) = data.strip_prefix('@') {
                anyhow::bail!(
                    "--from-curl: the body is read from the file {file}: paste the JSON itself after -d"
                );
            }
            let value: serde_json::Value = serde_json::from_str(&data)
                .with_context(|| format!("--from-curl: the -d body is not JSON: {data}"))?;
            let serde_json::Value::Object(obj) = value else {
                anyhow::bail!("--from-curl: the -d body must be a JSON object, got {data}");
            };
            req.json = true;
            for (k, v) in obj {
                let field = match v {
                    serde_json::Value::String(s) => FieldValue::Text(s),
                    other => FieldValue::Json(other.to_string()),
                };
                req.fields.push((k, field));
            }
        } else if !form {
            anyhow::bail!("--from-curl: the command sends no body (-F fields or -d JSON)");
        }
        Ok(req)
    }

    fn role(&self, name: &str, value: &FieldValue) -> Role {
        let lower = name.to_ascii_lowercase();
        let has = |words: &[&str]| words.iter().any(|w| lower.contains(w));
        match value {
            FieldValue::File => return Role::Image(ImageShape::File),
            FieldValue::Text(v) if v.starts_with("data:image/") => {
                return Role::Image(ImageShape::DataUrl);
            }
            FieldValue::Text(v) if matches!(v.as_str(), "openai" | "gemini") => {
                return Role::Provider;
            }
            FieldValue::Json(v) if matches!(v.as_str(), "true" | "false") => return Role::Age,
            _ => {}
        }
        if has(&["image", "photo", "picture", "file", "img"]) {
            Role::Image(ImageShape::Base64)
        } else if has(&[
            "prompt",
            "instruction",
            "text",
            "description",
            "caption",
            "query",
        ]) {
            Role::Prompt
        } else if has(&["provider", "backend", "vendor"]) {
            Role::Provider
        } else if has(&["age", "adult", "over", "consent", "confirm"]) {
            Role::Age
        } else {
            Role::Other
        }
    }
}

/// The route (path and query) and the explicit or scheme's port of a URL.
fn route_and_port(url: &str) -> anyhow::Result<(String, Option<u16>)> {
    let (scheme, rest) = match url.split_once("://") {
        Some((s, r)) => (s.to_ascii_lowercase(), r),
        None => ("http".to_owned(), url),
    };
    let (authority, route) = match rest.find(['/', '?']) {
        Some(i) if rest[i..].starts_with('/') => (&rest[..i], rest[i..].to_owned()),
        Some(i) => (&rest[..i], format!("/{}", &rest[i..])),
        None => (rest, "/".to_owned()),
    };
    let host = authority.rsplit('@').next().unwrap_or(authority);
    // `[::1]:8000` for IPv6, `host:8000` otherwise
    let port_text = match host.strip_prefix('[') {
        Some(v6) => v6.split_once("]:").map(|(_, p)| p),
        None => host.rsplit_once(':').map(|(_, p)| p),
    };
    let port = match port_text {
        Some(p) => Some(
            p.parse::<u16>()
                .with_context(|| format!("--from-curl: the URL {url:?} has a bad port {p:?}"))?,
        ),
        None => match scheme.as_str() {
            "http" => Some(80),
            "https" => Some(443),
            _ => None,
        },
    };
    let route = route.split('#').next().unwrap_or("/").to_owned();
    Ok((route, port))
}

/// A TOML string literal.
fn quote(s: &str) -> String {
    toml::Value::String(s.to_owned()).to_string()
}

/// A TOML key: bare when it can be.
fn key(s: &str) -> String {
    if !s.is_empty()
        && s.chars()
            .all(|c| c.is_ascii_alphanumeric() || c == '_' || c == '-')
    {
        s.to_owned()
    } else {
        quote(s)
    }
}

/// The `[pipeline.request]` section (and its sub-tables), with a question at each blank.
fn request_section(request: Option<&CurlRequest>) -> String {
    let Some(req) = request else {
        return "\
# QUESTION: check each value against your API. This is the common multipart shape (also the
# reference backend's); a JSON body is `body = \"json\"` with `image_as = \"base64\"` or
# \"data-url\". `traceless init --from-curl '<a curl command you use>'` fills this from it.
[pipeline.request]
route = \"/v1/generations\"
method = \"POST\"
body = \"multipart\"
image_field = \"image\"
image_as = \"file\"              # \"file\" (a file part), \"base64\" or \"data-url\"
prompt_field = \"prompt\"
provider_field = \"provider\"     # \"\" when your API has no provider choice
age_field = \"age_confirmed\"     # age_gate = false when it has no age confirmation
age_true = \"true\"
age_false = \"false\"
"
        .to_owned();
    };
    let mut out = String::from("# Drawn from your curl command line.\n[pipeline.request]\n");
    out.push_str(&format!("route = {}\n", quote(&req.route)));
    out.push_str(&format!(
        "method = {}\n",
        quote(req.method.as_deref().unwrap_or("POST"))
    ));
    out.push_str(&format!(
        "body = {}\n",
        quote(if req.json { "json" } else { "multipart" })
    ));
    let mut image = None;
    let mut prompt = None;
    let mut provider = None;
    let mut age = None;
    let mut extra = Vec::new();
    for (name, value) in &req.fields {
        let role = req.role(name, value);
        let slot = match role {
            Role::Image(shape) => (image.is_none()).then(|| image = Some((name, shape))),
            Role::Prompt => (prompt.is_none()).then(|| prompt = Some(name)),
            Role::Provider => (provider.is_none()).then(|| provider = Some((name, value))),
            Role::Age => (age.is_none()).then(|| age = Some((name, value))),
            Role::Other => None,
        };
        if slot.is_none() {
            extra.push((name, value));
        }
    }
    match image {
        Some((name, shape)) => {
            out.push_str(&format!("image_field = {}\n", quote(name)));
            let shape = match shape {
                ImageShape::File => "file",
                ImageShape::DataUrl => "data-url",
                ImageShape::Base64 => "base64",
            };
            if shape == "base64" {
                out.push_str(
                    "# QUESTION: the image as plain base64? \"data-url\" if it is data:image/...;base64,...\n",
                );
            }
            out.push_str(&format!("image_as = {}\n", quote(shape)));
        }
        None => out.push_str(&format!(
            "# QUESTION: which field carries the photo? (none of yours looked like one)\nimage_field = \"image\"\nimage_as = {}\n",
            quote(if req.json { "base64" } else { "file" })
        )),
    }
    match prompt {
        Some(name) => out.push_str(&format!("prompt_field = {}\n", quote(name))),
        None => out.push_str(
            "# QUESTION: which field carries the prompt? (none of yours looked like one)\nprompt_field = \"prompt\"\n",
        ),
    }
    match provider {
        Some((name, _)) => out.push_str(&format!("provider_field = {}\n", quote(name))),
        None => out.push_str(
            "# QUESTION: your curl chose no provider; \"\" means the backend decides on its own.\nprovider_field = \"\"\n",
        ),
    }
    match age {
        Some((name, value)) => {
            let (yes, no) = match value {
                FieldValue::Json(v) => (v.clone(), if v == "true" { "false" } else { "true" }.to_owned()),
                FieldValue::Text(v) => (v.clone(), opposite(v)),
                FieldValue::File => ("true".to_owned(), "false".to_owned()),
            };
            out.push_str(&format!("age_field = {}\n", quote(name)));
            out.push_str(&format!("age_true = {}\n", quote(&yes)));
            out.push_str(&format!(
                "# QUESTION: the value that denies the age confirmation.\nage_false = {}\n",
                quote(&no)
            ));
        }
        None => out.push_str(
            "# QUESTION: your curl sent no age confirmation. If your API takes one, set age_field,\n# age_true and age_false (policy clause 7 is tested only then).\nage_gate = false\n",
        ),
    }
    let mut tables = String::new();
    if !extra.is_empty() {
        tables.push_str(
            "# Sent as they are with every request. QUESTION: are these right for the audit?\n[pipeline.request.extra_fields]\n",
        );
        for (name, value) in extra {
            let v = match value {
                FieldValue::Text(v) | FieldValue::Json(v) => v.clone(),
                FieldValue::File => String::new(),
            };
            tables.push_str(&format!("{} = {}\n", key(name), quote(&v)));
        }
    }
    if let Some((_, value)) = provider {
        let shown = match value {
            FieldValue::Text(v) | FieldValue::Json(v) => v.clone(),
            FieldValue::File => String::new(),
        };
        if !matches!(shown.as_str(), "openai" | "gemini") {
            tables.push_str(&format!(
                "# QUESTION: your values for each provider (your curl sent {}).\n[pipeline.request.provider_values]\nopenai = \"openai\"\ngemini = \"gemini\"\n",
                quote(&shown)
            ));
        }
    }
    if !req.headers.is_empty() {
        tables.push_str(
            "# Sent with every request. QUESTION: a real credential must not go into this file: use a\n# test one your backend accepts.\n[pipeline.request.headers]\n",
        );
        for (name, value) in &req.headers {
            tables.push_str(&format!("{} = {}\n", key(name), quote(value)));
        }
    }
    out.push_str(&tables);
    out
}

/// The usual negative of a form value that confirms.
fn opposite(v: &str) -> String {
    match v.to_ascii_lowercase().as_str() {
        "yes" => "no",
        "y" => "n",
        "true" => "false",
        "1" => "0",
        "on" => "off",
        _ => "false",
    }
    .to_owned()
}

#[cfg(test)]
mod tests {
    use super::*;

    fn request_of(curl: &str) -> crate::config::RequestMapping {
        let dir = tempfile::tempdir().unwrap();
        write_kit(dir.path(), Some(curl), false).unwrap();
        let path = dir.path().join("traceless.toml");
        let text = std::fs::read_to_string(&path)
            .unwrap()
            .replace("command = []", "command = [\"./app\"]");
        crate::config::parse(&path, &text)
            .map_err(|e| format!("{e}\n{text}"))
            .unwrap()
            .pipeline
            .request
    }

    #[test]
    fn the_issues_example_fills_a_multipart_mapping() {
        let req =
            CurlRequest::parse("curl -F image=@p.png -F prompt=hi http://localhost:8000/edit")
                .unwrap();
        assert_eq!(req.route, "/edit");
        assert_eq!(req.port, Some(8000));
        assert!(!req.json);
        for (url, route, port) in [
            ("http://[::1]:9000/a?b=1#frag", "/a?b=1", Some(9000)),
            ("https://[::1]/a", "/a", Some(443)),
            ("localhost:8080", "/", Some(8080)),
            ("http://user:pw@host/x", "/x", Some(80)),
        ] {
            assert_eq!(
                route_and_port(url).unwrap(),
                (route.to_owned(), port),
                "{url}"
            );
        }
        let m = request_of("curl -F image=@p.png -F prompt=hi http://localhost:8000/edit");
        assert_eq!(m.route, "/edit");
        assert_eq!(m.body, crate::config::BodyEncoding::Multipart);
        assert_eq!(m.image_field, "image");
        assert_eq!(m.image_as, crate::config::ImageAs::File);
        assert_eq!(m.prompt_field, "prompt");
        assert_eq!(m.provider_field, None);
        assert_eq!(m.age_field, None);
    }

    #[test]
    fn form_fields_headers_and_odd_options() {
        let m = request_of(
            "curl -sS -o out.png -X post --header 'X-Api-Key: test' -F 'file=@me.jpg;type=image/jpeg' \
             -F 'instruction=make it blue' -F age_ok=yes -F provider=oai -F style=anime \
             'https://api.example.com:8443/v2/edit?fast=1'",
        );
        assert_eq!(m.route, "/v2/edit?fast=1");
        assert_eq!(m.method, "POST");
        assert_eq!(m.image_field, "file");
        assert_eq!(m.prompt_field, "instruction");
        assert_eq!(m.age_field.as_deref(), Some("age_ok"));
        assert_eq!((m.age_true.as_str(), m.age_false.as_str()), ("yes", "no"));
        assert_eq!(m.provider_field.as_deref(), Some("provider"));
        assert_eq!(
            m.extra_fields,
            vec![("style".to_owned(), "anime".to_owned())]
        );
        assert_eq!(m.headers, vec![("X-Api-Key".to_owned(), "test".to_owned())]);
    }

    #[test]
    fn a_json_body_fills_a_json_mapping() {
        let m = request_of(
            r#"curl http://127.0.0.1:9000/api/edit -H 'Content-Type: application/json' -d '{"photo": "data:image/png;base64,iVBO", "instruction": "hi", "over13": true, "provider": "gemini"}'"#,
        );
        assert_eq!(m.body, crate::config::BodyEncoding::Json);
        assert_eq!(m.image_field, "photo");
        assert_eq!(m.image_as, crate::config::ImageAs::DataUrl);
        assert_eq!(m.prompt_field, "instruction");
        assert_eq!(m.age_field.as_deref(), Some("over13"));
        assert_eq!(
            (m.age_true.as_str(), m.age_false.as_str()),
            ("true", "false")
        );
        assert_eq!(m.provider_field.as_deref(), Some("provider"));
    }

    #[test]
    fn bad_command_lines_are_explained() {
        for (curl, expect) in [
            ("curl -F 'image=@p.png", "unclosed quote"),
            ("curl -F image=@p.png", "names no URL"),
            ("curl http://localhost:8000/edit", "sends no body"),
            ("curl -d 'not json' http://localhost/x", "not JSON"),
            ("curl -d '[1]' http://localhost/x", "must be a JSON object"),
            ("curl -F image http://localhost/x", "expected name=value"),
            ("curl -F a=b http://localhost:99999/x", "bad port"),
            ("curl -F a=b -d '{}' http://localhost/x", "one body"),
        ] {
            let err = format!("{:#}", CurlRequest::parse(curl).unwrap_err());
            assert!(err.contains(expect), "{curl}: {err}");
        }
    }

    #[test]
    fn the_plain_kit_config_asks_its_questions_and_parses_once_answered() {
        let text = config_text(None);
        let asked: Vec<String> = questions(&text).into_iter().map(|(_, q)| q).collect();
        for topic in [
            "providers",
            "started",
            "GET route",
            "variables",
            "scenarios",
        ] {
            assert!(
                asked.iter().any(|q| q.contains(topic)),
                "{topic}: {asked:?}"
            );
        }
        let dir = tempfile::tempdir().unwrap();
        let path = dir.path().join("traceless.toml");
        let written = write_kit(dir.path(), None, false).unwrap();
        assert!(written.contains(&path));
        assert_eq!(std::fs::read_to_string(&path).unwrap(), text);
        // unanswered, the audit refuses it at the command
        let err = crate::config::parse(&path, &text).unwrap_err();
        assert_eq!(err.key.as_deref(), Some("pipeline.command"), "{err}");
        let text = text.replace("command = []", "command = [\"./app\"]");
        let cfg = crate::config::parse(&path, &text).unwrap();
        assert_eq!(cfg.pipeline.request.route, "/v1/generations");
        let scenarios =
            crate::scenario::load_all(&cfg.dir, &cfg.audit.scenarios, None, &cfg.audit.fixtures)
                .unwrap();
        assert_eq!(scenarios.len(), 8);
        let reference = crate::scenario::load_all(
            &cfg.dir,
            &["scenarios/reference/*.toml".to_owned()],
            None,
            &cfg.audit.fixtures,
        )
        .unwrap();
        assert_eq!(reference.len(), assets::files_under("scenarios").len());
        // and nothing is overwritten unasked
        let err = write_kit(dir.path(), None, false).unwrap_err().to_string();
        assert!(
            err.contains("--force") && err.contains("traceless.toml"),
            "{err}"
        );
        write_kit(dir.path(), None, true).unwrap();
    }
}
