//! State shared by both mocks and the TLS fronts: the recording, the scripted behaviours, and the
//! files the Files APIs were given.

use std::collections::{HashMap, VecDeque};
use std::sync::{Mutex, MutexGuard};
use std::time::Duration;

use crate::models::ModelRules;
use crate::types::{Behaviour, Provider, RecordedRequest, TlsRefusal};

/// A file uploaded to the OpenAI Files API.
#[derive(Debug, Clone)]
pub struct OpenAiFile {
    pub id: String,
    pub filename: String,
    pub purpose: String,
    pub bytes: usize,
    pub created_at: i64,
}

/// A file uploaded (or being uploaded) through the Gemini resumable upload protocol.
#[derive(Debug, Clone)]
pub struct GeminiFile {
    /// "files/<id>".
    pub name: String,
    pub display_name: Option<String>,
    pub mime_type: String,
    /// Bytes received so far (the upload URL's chunks, in offset order).
    pub data: Vec<u8>,
    pub declared_len: Option<u64>,
    pub created: time::OffsetDateTime,
    pub finalized: bool,
    /// The `upload_id` of the upload URL that feeds it.
    pub upload_id: String,
}

/// How many interactions the Interactions API mock keeps for retrieval at most, and how many bytes
/// (their output and the create request that made each) they may take together. The real API keeps
/// every stored interaction for days; the mock keeps only the newest ones, evicting the oldest first,
/// so its memory stays flat however many requests an audit sends (10,000 creates hold no more than
/// this). An evicted interaction is answered as one never stored: 404.
pub const KEPT_INTERACTIONS: usize = 256;
pub const KEPT_INTERACTION_BYTES: usize = 64 * 1024 * 1024;

/// An interaction created with `store` not false, as `GET /{version}/interactions/{id}` returns it.
#[derive(Debug, Clone)]
pub struct KeptInteraction {
    pub id: String,
    /// Where it was created: "" for the Gemini API, `projects/{p}/locations/{l}` for Vertex AI; it
    /// is found from there alone.
    pub scope: String,
    /// The whole Interaction (steps included) as the create answered it.
    pub interaction: serde_json::Value,
    /// The create request's `input`, for `include_input=true`.
    pub input: Option<serde_json::Value>,
    /// What it is counted as against [`KEPT_INTERACTION_BYTES`].
    pub bytes: usize,
    /// A `background` interaction still running: what its run produces when it ends. None once
    /// it has ended (completed, failed or cancelled), and for every other interaction.
    pub run: Option<BackgroundRun>,
}

/// How many gets answer a `background` interaction `in_progress` before one answers it finished,
/// unless [`crate::MockOptions::background_polls`] says otherwise: one, so a client that polls
/// sees `in_progress` once (as the create answered it), then the finished interaction. Counted
/// in requests, never in wall-clock time, so every run of a test sees the same answers.
pub const BACKGROUND_POLLS: u32 = 1;

/// A `background` interaction's run, kept until a get ends it or a cancel stops it: what the
/// create asked for and the scripted behaviour it took, so the answer is made (and its image
/// generated) only when the run ends, and never for a cancelled one.
#[derive(Debug, Clone)]
pub struct BackgroundRun {
    /// How many more gets answer it `in_progress`.
    pub polls_left: u32,
    /// The answer's image format; None for a text-only answer.
    pub image: Option<&'static str>,
    pub input_tokens: u32,
    /// The behaviour the create took (a safety block ends the run `failed`).
    pub behaviour: Behaviour,
}

/// The kept interactions, oldest first, within [`KEPT_INTERACTIONS`] and [`KEPT_INTERACTION_BYTES`].
#[derive(Debug, Default)]
pub struct KeptInteractions {
    list: VecDeque<KeptInteraction>,
    bytes: usize,
}

impl KeptInteractions {
    /// Keeps one more, evicting the oldest beyond the bounds.
    pub fn keep(&mut self, kept: KeptInteraction) {
        self.bytes += kept.bytes;
        self.list.push_back(kept);
        self.evict();
    }

    /// Changes a kept one in place (its `bytes` as `change` leaves them), then evicts the oldest
    /// beyond the bounds; None when it is not kept.
    pub fn update<R>(
        &mut self,
        scope: &str,
        id: &str,
        change: impl FnOnce(&mut KeptInteraction) -> R,
    ) -> Option<R> {
        let kept = self
            .list
            .iter_mut()
            .find(|k| k.id == id && k.scope == scope)?;
        let before = kept.bytes;
        let answer = change(kept);
        self.bytes = self.bytes - before + kept.bytes;
        self.evict();
        Some(answer)
    }

    fn evict(&mut self) {
        while self.list.len() > KEPT_INTERACTIONS || self.bytes > KEPT_INTERACTION_BYTES {
            match self.list.pop_front() {
                Some(old) => self.bytes -= old.bytes,
                None => break,
            }
        }
    }

    pub fn get(&self, scope: &str, id: &str) -> Option<&KeptInteraction> {
        self.list.iter().find(|k| k.id == id && k.scope == scope)
    }

    /// Forgets one; whether it was kept.
    pub fn remove(&mut self, scope: &str, id: &str) -> bool {
        let Some(at) = self
            .list
            .iter()
            .position(|k| k.id == id && k.scope == scope)
        else {
            return false;
        };
        if let Some(old) = self.list.remove(at) {
            self.bytes -= old.bytes;
        }
        true
    }

    #[cfg(test)]
    fn count(&self) -> usize {
        self.list.len()
    }

    #[cfg(test)]
    fn bytes(&self) -> usize {
        self.bytes
    }
}

/// What the mocks received, in arrival order: every call, or the newest `keep` of them.
#[derive(Debug, Default)]
struct Recordings {
    list: VecDeque<RecordedRequest>,
    /// How many older recordings were dropped to keep the window.
    dropped: usize,
    keep: Option<usize>,
    /// Every request each provider received, whether its recording is still kept or not.
    received: HashMap<Provider, u64>,
}

#[derive(Debug)]
pub struct Shared {
    pub openai_key: String,
    pub gemini_key: String,
    pub timeout_hold: Duration,
    pub models: ModelRules,
    /// Side of the square PNG each generation answer carries.
    pub output_side: u32,
    recorded: Mutex<Recordings>,
    tls_refusals: Mutex<Vec<TlsRefusal>>,
    behaviours: Mutex<HashMap<Provider, VecDeque<Behaviour>>>,
    /// Scripts by key, for the requests the router assigns a key: concurrent requests each get
    /// their own script, whatever order their calls arrive in.
    keyed: Mutex<HashMap<u64, VecDeque<Behaviour>>>,
    router: RouterSlot,
    pub openai_files: Mutex<HashMap<String, OpenAiFile>>,
    /// Keyed by the file id (the part after "files/").
    pub gemini_files: Mutex<HashMap<String, GeminiFile>>,
    /// The Interactions API's stored interactions (bounded; see [`KEPT_INTERACTIONS`]).
    pub gemini_interactions: Mutex<KeptInteractions>,
    /// How many gets answer a `background` interaction `in_progress` (see [`BACKGROUND_POLLS`]).
    pub background_polls: u32,
    /// Access tokens the mocked Google token endpoint issued; Vertex AI calls must carry one.
    pub google_tokens: Mutex<std::collections::HashSet<String>>,
    /// The Google service account of this run, made when first asked for: its key alone signs
    /// the assertions the token endpoint takes.
    pub service_account: std::sync::OnceLock<crate::account::ServiceAccount>,
}

/// Locks a mutex, carrying on through a poisoned one: the data stays usable evidence even if a
/// handler panicked while holding it.
pub fn lock<T>(m: &Mutex<T>) -> MutexGuard<'_, T> {
    m.lock().unwrap_or_else(|poisoned| poisoned.into_inner())
}

impl Shared {
    pub fn new(
        openai_key: String,
        gemini_key: String,
        timeout_hold: Duration,
        models: ModelRules,
        output_side: u32,
    ) -> Shared {
        Shared {
            openai_key,
            gemini_key,
            timeout_hold,
            models,
            output_side,
            recorded: Mutex::new(Recordings::default()),
            tls_refusals: Mutex::new(Vec::new()),
            behaviours: Mutex::new(HashMap::new()),
            keyed: Mutex::new(HashMap::new()),
            router: RouterSlot(Mutex::new(None)),
            openai_files: Mutex::new(HashMap::new()),
            gemini_files: Mutex::new(HashMap::new()),
            gemini_interactions: Mutex::new(KeptInteractions::default()),
            background_polls: BACKGROUND_POLLS,
            google_tokens: Mutex::new(std::collections::HashSet::new()),
            service_account: std::sync::OnceLock::new(),
        }
    }

    /// Appends a recording, numbering it in arrival order; beyond the kept window the oldest
    /// recording is dropped.
    pub fn record(&self, mut rec: RecordedRequest) {
        let mut r = lock(&self.recorded);
        rec.seq = (r.dropped + r.list.len()) as u64;
        *r.received.entry(rec.provider).or_default() += 1;
        r.list.push_back(rec);
        while r.keep.is_some_and(|keep| r.list.len() > keep) {
            r.list.pop_front();
            r.dropped += 1;
        }
    }

    /// How many requests `provider` received so far (kept in the window or not).
    pub fn received(&self, provider: Provider) -> u64 {
        lock(&self.recorded)
            .received
            .get(&provider)
            .copied()
            .unwrap_or(0)
    }

    /// Keep only the newest `keep` recordings (`None`: every one, as an audit needs).
    pub fn keep_recorded(&self, keep: Option<usize>) {
        lock(&self.recorded).keep = keep;
    }

    pub fn recorded(&self) -> Vec<RecordedRequest> {
        self.recorded_from(0)
    }

    /// How many requests arrived so far, kept or not: the arrival number of the next.
    pub fn recorded_count(&self) -> usize {
        let r = lock(&self.recorded);
        r.dropped + r.list.len()
    }

    /// Moves every kept recording out; numbering goes on where it was.
    pub fn take_recorded(&self) -> Vec<RecordedRequest> {
        let mut r = lock(&self.recorded);
        r.dropped += r.list.len();
        r.list.drain(..).collect()
    }

    /// Drops every recording so far; numbering and `recorded_from` indexes start again at 0.
    pub fn forget_recorded(&self) {
        let mut r = lock(&self.recorded);
        r.list.clear();
        r.dropped = 0;
        r.received.clear();
    }

    pub fn record_refusal(&self, refusal: TlsRefusal) {
        lock(&self.tls_refusals).push(refusal);
    }

    pub fn tls_refusals(&self) -> Vec<TlsRefusal> {
        lock(&self.tls_refusals).clone()
    }

    /// The recordings from arrival number `start` on (those still kept).
    pub fn recorded_from(&self, start: usize) -> Vec<RecordedRequest> {
        let r = lock(&self.recorded);
        r.list
            .iter()
            .skip(start.saturating_sub(r.dropped))
            .cloned()
            .collect()
    }

    pub fn set_behaviour(&self, provider: Provider, seq: Vec<Behaviour>) {
        lock(&self.behaviours).insert(provider, seq.into());
    }

    /// What is left of each provider's script, the head first (an unscripted provider answers ok).
    pub fn behaviours(&self) -> Vec<(Provider, Vec<Behaviour>)> {
        let all = lock(&self.behaviours);
        let mut scripts: Vec<_> = all
            .iter()
            .map(|(p, q)| (*p, q.iter().copied().collect()))
            .collect();
        scripts.sort_by_key(|(p, _)| *p);
        scripts
    }

    /// The behaviour for the next generation request: the script's head, the last entry repeating.
    pub fn take_behaviour(&self, provider: Provider) -> Behaviour {
        next(lock(&self.behaviours).get_mut(&provider))
    }

    /// Scripts what the generation requests the router assigns `key` meet, in order.
    pub fn set_keyed_behaviour(&self, key: u64, seq: Vec<Behaviour>) {
        lock(&self.keyed).insert(key, seq.into());
    }

    pub fn set_router(&self, router: Router) {
        *lock(&self.router.0) = Some(router);
    }

    /// The behaviour for this generation request: its key's script when the router assigns it
    /// one that has a script, the provider's otherwise.
    pub fn take_behaviour_for(&self, provider: Provider, rec: &RecordedRequest) -> Behaviour {
        let router = lock(&self.router.0).clone();
        if let Some(key) = router.and_then(|route| route(rec)) {
            let mut keyed = lock(&self.keyed);
            if let Some(queue) = keyed.get_mut(&key) {
                return next(Some(queue));
            }
        }
        self.take_behaviour(provider)
    }
}

/// Says which keyed script a generation request follows (the harness's canary lookup); `None`
/// for the provider's script. The mocks only call it: what a key means is the caller's business.
pub type Router = std::sync::Arc<dyn Fn(&RecordedRequest) -> Option<u64> + Send + Sync>;

/// Where the router lives; shown by whether one is set.
struct RouterSlot(Mutex<Option<Router>>);

impl std::fmt::Debug for RouterSlot {
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        let set = lock(&self.0).is_some();
        f.write_str(if set { "Router(set)" } else { "Router(none)" })
    }
}

/// A script's head, the last entry repeating; `Ok` without a script.
fn next(queue: Option<&mut VecDeque<Behaviour>>) -> Behaviour {
    match queue {
        Some(queue) if queue.len() > 1 => queue.pop_front().unwrap_or_default(),
        Some(queue) => queue.front().copied().unwrap_or_default(),
        None => Behaviour::Ok,
    }
}

#[cfg(test)]
pub(crate) mod tests {
    use super::*;

    fn recording(prompt: &str) -> RecordedRequest {
        RecordedRequest {
            seq: 0,
            at: std::time::SystemTime::now(),
            provider: Provider::OpenAi,
            tls: true,
            method: "POST".into(),
            path: "/v1/images/edits".into(),
            query: None,
            headers: Vec::new(),
            body: Vec::new(),
            endpoint: crate::types::Endpoint::ImagesEdits,
            model: None,
            user: None,
            store: None,
            images: Vec::new(),
            prompt: Some(prompt.into()),
            rejected: None,
            behaviour: Behaviour::Ok,
            status: 0,
            output_image: None,
            creates: None,
            continues: None,
        }
    }

    pub(crate) fn shared() -> Shared {
        Shared::new(
            "a".into(),
            "b".into(),
            Duration::from_secs(1),
            ModelRules::default(),
            64,
        )
    }

    fn kept(id: &str, scope: &str, bytes: usize) -> KeptInteraction {
        KeptInteraction {
            id: id.into(),
            scope: scope.into(),
            interaction: serde_json::json!({"id": id}),
            input: None,
            bytes,
            run: None,
        }
    }

    #[test]
    fn kept_interactions_stay_bounded_over_ten_thousand_creates_and_evict_the_oldest() {
        let mut store = KeptInteractions::default();
        for i in 0..10_000 {
            store.keep(kept(&format!("v1_{i}"), "", 1000));
            assert!(store.count() <= KEPT_INTERACTIONS);
        }
        assert_eq!(store.count(), KEPT_INTERACTIONS);
        assert_eq!(store.bytes(), KEPT_INTERACTIONS * 1000);
        assert!(store.get("", "v1_0").is_none());
        assert!(
            store
                .get("", &format!("v1_{}", 10_000 - KEPT_INTERACTIONS))
                .is_some()
        );
        assert!(store.get("", "v1_9999").is_some());
        // Big ones are bounded by bytes too.
        let big = KEPT_INTERACTION_BYTES / 4 + 1;
        for i in 0..10 {
            store.keep(kept(&format!("big_{i}"), "", big));
            assert!(store.bytes() <= KEPT_INTERACTION_BYTES);
        }
        assert_eq!(store.count(), 3);
        assert!(store.get("", "big_9").is_some() && store.get("", "big_6").is_none());
    }

    #[test]
    fn a_kept_interaction_is_found_in_its_own_scope_alone_until_removed() {
        let mut store = KeptInteractions::default();
        store.keep(kept("v1_a", "projects/p/locations/l", 10));
        assert!(store.get("", "v1_a").is_none());
        assert!(!store.remove("", "v1_a"));
        assert!(store.get("projects/p/locations/l", "v1_a").is_some());
        assert!(store.remove("projects/p/locations/l", "v1_a"));
        assert!(!store.remove("projects/p/locations/l", "v1_a"));
        assert_eq!((store.count(), store.bytes()), (0, 0));
    }

    #[test]
    fn a_kept_window_drops_the_oldest_recordings_and_keeps_their_numbers() {
        let all = shared();
        let windowed = shared();
        windowed.keep_recorded(Some(3));
        for i in 0..5 {
            all.record(recording(&i.to_string()));
            windowed.record(recording(&i.to_string()));
        }
        let seqs = |v: Vec<RecordedRequest>| v.iter().map(|r| r.seq).collect::<Vec<_>>();
        assert_eq!(seqs(all.recorded()), [0, 1, 2, 3, 4]);
        assert_eq!(seqs(windowed.recorded()), [2, 3, 4]);
        assert_eq!(seqs(windowed.recorded_from(3)), [3, 4]);
        assert_eq!(seqs(windowed.recorded_from(1)), [2, 3, 4]);
        assert_eq!(seqs(all.recorded_from(3)), [3, 4]);
        assert_eq!(windowed.received(Provider::OpenAi), 5);
    }

    #[test]
    fn taken_recordings_leave_and_later_ones_are_numbered_on() {
        let shared = shared();
        for i in 0..3 {
            shared.record(recording(&i.to_string()));
        }
        assert_eq!(shared.recorded_count(), 3);
        let seqs = |v: Vec<RecordedRequest>| v.iter().map(|r| r.seq).collect::<Vec<_>>();
        assert_eq!(seqs(shared.take_recorded()), [0, 1, 2]);
        assert!(shared.recorded().is_empty());
        shared.record(recording("3"));
        assert_eq!(shared.recorded_count(), 4);
        assert_eq!(seqs(shared.recorded_from(3)), [3]);
        assert_eq!(seqs(shared.take_recorded()), [3]);
    }

    #[test]
    fn a_routed_request_follows_its_own_script_whatever_the_arrival_order() {
        let shared = shared();
        shared.set_behaviour(Provider::OpenAi, vec![Behaviour::Unavailable]);
        shared.set_keyed_behaviour(1, vec![Behaviour::ServerError, Behaviour::Ok]);
        shared.set_keyed_behaviour(2, vec![Behaviour::SafetyBlock]);
        shared.set_router(std::sync::Arc::new(|rec: &RecordedRequest| {
            rec.prompt.as_deref().and_then(|p| p.parse().ok())
        }));
        let call = recording;
        // Request 2 arrives first, then request 1 twice (a retry): each takes its own script.
        assert_eq!(
            shared.take_behaviour_for(Provider::OpenAi, &call("2")),
            Behaviour::SafetyBlock
        );
        assert_eq!(
            shared.take_behaviour_for(Provider::OpenAi, &call("1")),
            Behaviour::ServerError
        );
        assert_eq!(
            shared.take_behaviour_for(Provider::OpenAi, &call("1")),
            Behaviour::Ok
        );
        // Unrouted, or routed to a key without a script: the provider's script.
        assert_eq!(
            shared.take_behaviour_for(Provider::OpenAi, &call("x")),
            Behaviour::Unavailable
        );
        assert_eq!(
            shared.take_behaviour_for(Provider::OpenAi, &call("9")),
            Behaviour::Unavailable
        );
    }

    #[test]
    fn behaviours_are_taken_in_order_and_the_last_repeats() {
        let shared = Shared::new(
            "a".into(),
            "b".into(),
            Duration::from_secs(1),
            ModelRules::default(),
            64,
        );
        assert_eq!(shared.take_behaviour(Provider::OpenAi), Behaviour::Ok);
        shared.set_behaviour(
            Provider::OpenAi,
            vec![
                Behaviour::ServerError,
                Behaviour::Unavailable,
                Behaviour::Malformed,
            ],
        );
        assert_eq!(
            shared.take_behaviour(Provider::OpenAi),
            Behaviour::ServerError
        );
        assert_eq!(shared.take_behaviour(Provider::Gemini), Behaviour::Ok);
        assert_eq!(
            shared.take_behaviour(Provider::OpenAi),
            Behaviour::Unavailable
        );
        assert_eq!(
            shared.take_behaviour(Provider::OpenAi),
            Behaviour::Malformed
        );
        assert_eq!(
            shared.take_behaviour(Provider::OpenAi),
            Behaviour::Malformed
        );
        shared.set_behaviour(Provider::OpenAi, vec![]);
        assert_eq!(shared.take_behaviour(Provider::OpenAi), Behaviour::Ok);
    }
}
