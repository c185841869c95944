//! Short tokens (prompt markers, device ids, addresses, keys): every encoded form is spelled out once and all of
//! them go through one Aho-Corasick automaton, which is fast for a few short patterns.

use aho_corasick::{AhoCorasick, AhoCorasickKind, MatchKind};
use base64::Engine as _;
use base64::engine::general_purpose::{STANDARD_NO_PAD, URL_SAFE_NO_PAD};
use percent_encoding::{AsciiSet, NON_ALPHANUMERIC, utf8_percent_encode};

use super::{Encoding, NeedleId};

/// Encoded forms shorter than this would match by chance; they are not searched.
pub(crate) const MIN_FORM_LEN: usize = 8;

/// RFC 3986 unreserved characters stay literal (what `encodeURIComponent` and most URL libraries do).
const COMPONENT: &AsciiSet = &NON_ALPHANUMERIC
    .remove(b'-')
    .remove(b'.')
    .remove(b'_')
    .remove(b'~');

pub(crate) struct TokenForm {
    pub needle: NeedleId,
    pub encoding: Encoding,
    pub source_len: usize,
}

/// Every form of `text` we look for, deduplicated.
pub(crate) fn forms(text: &str) -> Vec<(Encoding, Vec<u8>)> {
    let raw = text.as_bytes();
    let mut out: Vec<(Encoding, Vec<u8>)> = vec![(Encoding::Raw, raw.to_vec())];
    let json = serde_json::to_string(text).expect("a string serialises");
    out.push((
        Encoding::JsonEscaped,
        json.as_bytes()[1..json.len() - 1].to_vec(),
    ));
    for set in [NON_ALPHANUMERIC, COMPONENT] {
        let upper = utf8_percent_encode(text, set).to_string();
        let lower = lowercase_escapes(&upper);
        out.push((Encoding::Percent, upper.into_bytes()));
        out.push((Encoding::Percent, lower.into_bytes()));
    }
    out.push((Encoding::HexLower, hex::encode(raw).into_bytes()));
    out.push((Encoding::HexUpper, hex::encode_upper(raw).into_bytes()));
    for (encoding, engine) in [
        (Encoding::Base64, STANDARD_NO_PAD),
        (Encoding::Base64Url, URL_SAFE_NO_PAD),
    ] {
        for align in 0..3 {
            out.push((encoding, base64_fragment(&engine, raw, align)));
        }
    }
    // A form identical to an earlier one (a plain ASCII token is its own JSON and percent form) is kept once,
    // under the earlier, simpler name.
    let mut seen: Vec<Vec<u8>> = Vec::new();
    out.retain(|(_, form)| {
        if form.len() < MIN_FORM_LEN || seen.contains(form) {
            return false;
        }
        seen.push(form.clone());
        true
    });
    out
}

fn lowercase_escapes(s: &str) -> String {
    let mut out = String::with_capacity(s.len());
    let mut rest = 0;
    for c in s.chars() {
        if rest > 0 {
            out.push(c.to_ascii_lowercase());
            rest -= 1;
        } else {
            out.push(c);
            if c == '%' {
                rest = 2;
            }
        }
    }
    out
}

/// The base64 characters fully determined by `raw` when it is preceded by `align` other bytes in the stream.
fn base64_fragment(engine: &base64::engine::GeneralPurpose, raw: &[u8], align: usize) -> Vec<u8> {
    let mut padded = vec![0u8; align];
    padded.extend_from_slice(raw);
    let encoded = engine.encode(&padded).into_bytes();
    let first_bit = 8 * align;
    let last_bit = 8 * (align + raw.len());
    let first = first_bit.div_ceil(6);
    let last = last_bit / 6;
    encoded[first..last.max(first)].to_vec()
}

/// One automaton over a group of tokens, and the tokens it was built from (merges rebuild from them).
struct TokenSet {
    tokens: Vec<(NeedleId, String)>,
    automaton: AhoCorasick,
    forms: Vec<TokenForm>,
}

impl TokenSet {
    fn build(tokens: Vec<(NeedleId, String)>) -> TokenSet {
        let mut patterns = Vec::new();
        let mut meta = Vec::new();
        for (needle, text) in &tokens {
            for (encoding, form) in forms(text) {
                patterns.push(form);
                meta.push(TokenForm {
                    needle: *needle,
                    encoding,
                    source_len: text.len(),
                });
            }
        }
        // Always a contiguous NFA. The crate would pick a DFA for few patterns (each request's new
        // tokens, the small segments), but building those DFAs took about 7% of the harness's CPU
        // in a long property run, and a DFA over the thousands of tokens of a long audit takes
        // seconds and hundreds of MB to build; every scan starts with the automaton's prefilter
        // anyway.
        let automaton = AhoCorasick::builder()
            .match_kind(MatchKind::Standard)
            .kind(Some(AhoCorasickKind::ContiguousNFA))
            .build(&patterns)
            .expect("token patterns are plain byte strings");
        TokenSet {
            tokens,
            automaton,
            forms: meta,
        }
    }
}

/// Segments are merged while the one before the last holds at most this many times the tokens of
/// the last, so an audit's thousands of tokens sit in O(log n) automata and each token is rebuilt
/// O(log n) times (rebuilding one automaton over all tokens after every request was quadratic).
const MERGE_RATIO: usize = 4;

/// Every token added so far, in a few automata maintained incrementally.
#[derive(Default)]
pub(crate) struct TokenIndex {
    segments: Vec<TokenSet>,
    /// The longest form of any token (chunked scans carry this much overlap).
    pub longest: usize,
}

impl TokenIndex {
    pub fn add(&mut self, needle: NeedleId, text: &str) {
        let forms = forms(text);
        if forms.is_empty() {
            return;
        }
        let longest = forms.iter().map(|(_, f)| f.len()).max().unwrap_or(0);
        self.longest = self.longest.max(longest);
        self.segments
            .push(TokenSet::build(vec![(needle, text.to_owned())]));
        while let [.., older, newer] = &self.segments[..]
            && older.tokens.len() <= MERGE_RATIO * newer.tokens.len()
        {
            let newer = self.segments.pop().expect("two segments");
            let mut older = self.segments.pop().expect("two segments");
            older.tokens.extend(newer.tokens);
            self.segments.push(TokenSet::build(older.tokens));
        }
    }

    /// Removes the tokens whose needle `gone` picks, and returns them; the rest stay in one automaton.
    pub fn split_off(&mut self, gone: impl Fn(&NeedleId) -> bool) -> Vec<(NeedleId, String)> {
        if !self
            .segments
            .iter()
            .any(|s| s.tokens.iter().any(|(n, _)| gone(n)))
        {
            return Vec::new();
        }
        let (retired, kept): (Vec<_>, Vec<_>) = self
            .segments
            .drain(..)
            .flat_map(|s| s.tokens)
            .partition(|(n, _)| gone(n));
        if !kept.is_empty() {
            self.segments.push(TokenSet::build(kept));
        }
        retired
    }

    pub fn is_empty(&self) -> bool {
        self.segments.is_empty()
    }

    #[cfg(test)]
    fn segment_count(&self) -> usize {
        self.segments.len()
    }

    /// `(form, start, end)` of every occurrence, overlapping ones included.
    pub fn find(&self, hay: &[u8], mut on: impl FnMut(&TokenForm, usize, usize)) {
        for set in &self.segments {
            for m in set.automaton.find_overlapping_iter(hay) {
                on(&set.forms[m.pattern().as_usize()], m.start(), m.end());
            }
        }
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn base64_fragments_are_substrings_of_any_stream() {
        let raw = b"tlp-0123456789ab";
        for align in 0..3 {
            let frag = base64_fragment(&STANDARD_NO_PAD, raw, align);
            let mut stream = b"xyz"[..align].to_vec();
            stream.extend_from_slice(raw);
            stream.extend_from_slice(b"tail");
            let encoded = STANDARD_NO_PAD.encode(&stream);
            assert!(
                encoded.contains(std::str::from_utf8(&frag).unwrap()),
                "align {align}"
            );
            assert!(frag.len() >= raw.len() * 4 / 3 - 2);
        }
    }

    #[test]
    fn plain_token_forms_are_deduplicated() {
        let f = forms("tlp-abcdef012345");
        let raw_like = f
            .iter()
            .filter(|(_, form)| form == b"tlp-abcdef012345")
            .count();
        assert_eq!(raw_like, 1);
        assert!(
            f.iter()
                .any(|(e, form)| *e == Encoding::Percent && form == b"tlp%2Dabcdef012345")
        );
        assert!(
            f.iter()
                .any(|(e, form)| *e == Encoding::Percent && form == b"tlp%2dabcdef012345")
        );
    }

    #[test]
    fn many_tokens_stay_in_few_automata_and_are_all_found() {
        let mut index = TokenIndex::default();
        let texts: Vec<String> = (0..2000).map(|i| format!("tlp-token-{i:08}")).collect();
        for (i, t) in texts.iter().enumerate() {
            index.add(
                NeedleId {
                    request: i as u32,
                    subject: crate::scan::Subject::Prompt,
                },
                t,
            );
        }
        assert!(
            index.segment_count() <= 8,
            "{} segments",
            index.segment_count()
        );
        for (i, t) in texts.iter().enumerate().step_by(97) {
            let hay = format!("xx{}yy", hex::encode(t));
            let mut found = Vec::new();
            index.find(hay.as_bytes(), |form, _, _| found.push(form.needle.request));
            assert_eq!(found, vec![i as u32], "token {i}");
        }
    }
}
