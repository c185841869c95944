//! Which models the mocks accept, by family pattern, and which they answer as retired.
//!
//! Providers rename and retire models every few months; a mock with a fixed list refuses a backend
//! updated last week. So each API takes model names by pattern (`gpt-image-*`, `gpt-5*`,
//! `gemini-*-image*`), a retired model gets the answer the provider gives it today, and every list
//! can be replaced from the harness's `[mocks]` config when a release comes out after this one.

use serde::{Deserialize, Serialize};

/// Model name patterns: `*` matches any run of characters, everything else matches itself.
/// A name is checked against `retired` first, so `gpt-image-1` can be retired while `gpt-image-*`
/// stays accepted.
#[derive(Debug, Clone, PartialEq, Eq, Serialize, Deserialize)]
#[serde(rename_all = "kebab-case")]
pub struct ModelRules {
    /// Images API (`/images/edits`, `/images/generations`) and the Responses `image_generation` tool.
    pub openai_image: Vec<String>,
    /// Responses API (`/responses`).
    pub openai_responses: Vec<String>,
    /// OpenAI models that were shut down: 404 `model_not_found`, "has been deprecated".
    pub openai_retired: Vec<String>,
    /// Gemini models that answer with images.
    pub gemini_image: Vec<String>,
    /// Gemini models that answer with text only (asking them for images is refused).
    pub gemini_text: Vec<String>,
    /// Gemini models that were shut down: 404 NOT_FOUND, as for a name that never existed.
    pub gemini_retired: Vec<String>,
}

impl Default for ModelRules {
    /// The families the official SDKs document as of openai 3.60 / google-genai 3.6.1.
    fn default() -> Self {
        let list = |names: &[&str]| names.iter().map(|s| (*s).to_owned()).collect();
        ModelRules {
            openai_image: list(&["gpt-image-*", "chatgpt-image-latest"]),
            openai_responses: list(&["gpt-5*", "gpt-6*", "gpt-4.1*", "gpt-4o*", "o3*", "o4-mini*"]),
            // gpt-image-1 shut down on 2026-10-23, dall-e-2 and dall-e-3 on 2026-05-12.
            openai_retired: list(&["gpt-image-1", "dall-e-2", "dall-e-3"]),
            gemini_image: list(&["gemini-*-image*", "*-flash-image*"]),
            gemini_text: list(&[
                "gemini-2.5-flash",
                "gemini-2.5-pro",
                "gemini-2.5-flash-lite",
                "gemini-2.0-flash",
                "gemini-2.0-flash-lite",
                "gemini-3-pro-preview",
                "gemini-3-flash-preview",
                "gemini-3.1-pro*",
                "gemini-3.1-flash*",
            ]),
            gemini_retired: list(&[
                "gemini-2.0-flash-preview-image-generation",
                "gemini-2.0-flash-exp-image-generation",
                "gemini-2.5-flash-image-preview",
            ]),
        }
    }
}

/// How an API takes a model name.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub enum ModelStatus {
    Accepted,
    Retired,
    Unknown,
}

impl ModelRules {
    /// Every name accepted, none retired.
    pub fn any() -> ModelRules {
        let all = vec!["*".to_owned()];
        ModelRules {
            openai_image: all.clone(),
            openai_responses: all.clone(),
            openai_retired: Vec::new(),
            gemini_image: all.clone(),
            gemini_text: all,
            gemini_retired: Vec::new(),
        }
    }

    /// Checks `model` against the retired list, then the accepted families.
    pub fn status(&self, model: &str, accepted: &[String], retired: &[String]) -> ModelStatus {
        if matches_any(retired, model) {
            ModelStatus::Retired
        } else if matches_any(accepted, model) {
            ModelStatus::Accepted
        } else {
            ModelStatus::Unknown
        }
    }
}

/// Whether `name` matches one of `patterns`.
pub fn matches_any(patterns: &[String], name: &str) -> bool {
    patterns.iter().any(|p| glob(p, name))
}

/// `*`-only glob: the pattern's pieces between stars must occur in order, anchored at both ends.
fn glob(pattern: &str, name: &str) -> bool {
    let mut pieces = pattern.split('*');
    let first = pieces.next().unwrap_or_default();
    let Some(mut rest) = name.strip_prefix(first) else {
        return false;
    };
    let pieces: Vec<&str> = pieces.collect();
    let Some((last, middle)) = pieces.split_last() else {
        // No star at all: the whole name must have been the pattern.
        return rest.is_empty();
    };
    for piece in middle {
        match rest.find(piece) {
            Some(at) => rest = &rest[at + piece.len()..],
            None => return false,
        }
    }
    rest.len() >= last.len() && rest.ends_with(last)
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn globs_anchor_at_both_ends() {
        for (pattern, name, want) in [
            ("gpt-image-*", "gpt-image-2.5-sunburst", true),
            ("gpt-image-*", "gpt-image-", true),
            ("gpt-image-*", "xgpt-image-2", false),
            ("gpt-5*", "gpt-5.5", true),
            ("gpt-5*", "gpt-50", true),
            ("gpt-5*", "gpt-4o", false),
            ("gemini-*-image*", "gemini-3.1-flash-lite-image", true),
            ("gemini-*-image*", "gemini-2.5-flash-image-preview", true),
            ("gemini-*-image*", "gemini-2.5-flash", false),
            ("*-flash-image*", "nano-flash-image", true),
            ("dall-e-2", "dall-e-2", true),
            ("dall-e-2", "dall-e-20", false),
            ("a*b*c", "abc", true),
            ("a*b*c", "axxbyyc", true),
            ("a*bc*c", "abc", false),
        ] {
            assert_eq!(glob(pattern, name), want, "{pattern} vs {name}");
        }
    }

    #[test]
    fn retired_wins_over_the_family() {
        let rules = ModelRules::default();
        let image = |m: &str| rules.status(m, &rules.openai_image, &rules.openai_retired);
        assert_eq!(image("gpt-image-1"), ModelStatus::Retired);
        assert_eq!(image("dall-e-3"), ModelStatus::Retired);
        assert_eq!(image("gpt-image-1-mini"), ModelStatus::Accepted);
        assert_eq!(image("gpt-image-2.5-flare"), ModelStatus::Accepted);
        assert_eq!(image("gpt-5.5"), ModelStatus::Unknown);
        let gemini = |m: &str| rules.status(m, &rules.gemini_image, &rules.gemini_retired);
        assert_eq!(gemini("gemini-3.1-flash-lite-image"), ModelStatus::Accepted);
        assert_eq!(
            gemini("gemini-2.5-flash-image-preview"),
            ModelStatus::Retired
        );
        assert_eq!(gemini("gemini-2.5-flash"), ModelStatus::Unknown);
    }
}
