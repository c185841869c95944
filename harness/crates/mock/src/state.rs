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

#[derive(Debug)]
pub struct Shared {
    pub openai_key: String,
    pub gemini_key: String,
    pub timeout_hold: Duration,
    pub models: ModelRules,
    recorded: Mutex<Vec<RecordedRequest>>,
    tls_refusals: Mutex<Vec<TlsRefusal>>,
    behaviours: Mutex<HashMap<Provider, VecDeque<Behaviour>>>,
    pub openai_files: Mutex<HashMap<String, OpenAiFile>>,
    /// Keyed by the file id (the part after "files/").
    pub gemini_files: Mutex<HashMap<String, GeminiFile>>,
    /// Access tokens the mocked Google token endpoint issued; Vertex AI calls must carry one.
    pub google_tokens: Mutex<std::collections::HashSet<String>>,
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
    ) -> Shared {
        Shared {
            openai_key,
            gemini_key,
            timeout_hold,
            models,
            recorded: Mutex::new(Vec::new()),
            tls_refusals: Mutex::new(Vec::new()),
            behaviours: Mutex::new(HashMap::new()),
            openai_files: Mutex::new(HashMap::new()),
            gemini_files: Mutex::new(HashMap::new()),
            google_tokens: Mutex::new(std::collections::HashSet::new()),
        }
    }

    /// Appends a recording, numbering it in arrival order.
    pub fn record(&self, mut rec: RecordedRequest) {
        let mut recorded = lock(&self.recorded);
        rec.seq = recorded.len() as u64;
        recorded.push(rec);
    }

    pub fn recorded(&self) -> Vec<RecordedRequest> {
        self.recorded_from(0)
    }

    pub fn record_refusal(&self, refusal: TlsRefusal) {
        lock(&self.tls_refusals).push(refusal);
    }

    pub fn tls_refusals(&self) -> Vec<TlsRefusal> {
        lock(&self.tls_refusals).clone()
    }

    pub fn recorded_from(&self, start: usize) -> Vec<RecordedRequest> {
        lock(&self.recorded)
            .get(start..)
            .unwrap_or_default()
            .to_vec()
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
        let mut all = lock(&self.behaviours);
        match all.get_mut(&provider) {
            Some(queue) if queue.len() > 1 => queue.pop_front().unwrap_or_default(),
            Some(queue) => queue.front().copied().unwrap_or_default(),
            None => Behaviour::Ok,
        }
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn behaviours_are_taken_in_order_and_the_last_repeats() {
        let shared = Shared::new(
            "a".into(),
            "b".into(),
            Duration::from_secs(1),
            ModelRules::default(),
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
