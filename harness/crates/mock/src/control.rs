//! The control endpoint: change the mocks' scripted behaviours while they run, over plain HTTP on
//! its own loopback port (never the providers' ports, so a pipeline cannot reach it by mistake
//! through its provider base URL).
//!
//! - `GET /behaviour` answers every provider's remaining script as JSON,
//!   `{"openai": ["429", "ok"], "gemini": []}` (an empty script answers ok).
//! - `PUT /behaviour/{provider}` with a body such as `429,ok` replaces that provider's script;
//!   the answer is the new state as for `GET`. A bad provider or behaviour is a 400 naming it.
//! - `GET /recorded` answers how many requests each provider has received so far.

use std::sync::Arc;

use serde_json::{Value, json};

use crate::http::{Incoming, Reply};
use crate::state::Shared;
use crate::types::{Behaviour, Provider};

pub(crate) struct Control {
    pub shared: Arc<Shared>,
}

impl Control {
    pub fn respond(&self, request: &Incoming) -> Reply {
        let path = request.path.trim_end_matches('/');
        let body = String::from_utf8_lossy(&request.body);
        match (request.method.as_str(), path) {
            ("GET", "/behaviour") => ok(&self.scripts()),
            ("PUT" | "POST", _) if path.starts_with("/behaviour/") => {
                let provider = &path["/behaviour/".len()..];
                let parsed = provider
                    .parse::<Provider>()
                    .and_then(|p| Ok((p, Behaviour::parse_list(body.trim())?)));
                match parsed {
                    Ok((provider, script)) => {
                        self.shared.set_behaviour(provider, script);
                        ok(&self.scripts())
                    }
                    Err(e) => error(400, &e.to_string()),
                }
            }
            ("GET", "/recorded") => {
                let count = |p: Provider| self.shared.received(p);
                ok(&json!({"openai": count(Provider::OpenAi), "gemini": count(Provider::Gemini)}))
            }
            (method, _) => error(
                404,
                &format!(
                    "no such control request: {method} {path}; try GET /behaviour, PUT /behaviour/{{provider}} \
                     with a body like `429,ok`, or GET /recorded"
                ),
            ),
        }
    }

    fn scripts(&self) -> Value {
        let mut out = json!({"openai": [], "gemini": []});
        for (provider, script) in self.shared.behaviours() {
            out[provider.as_str()] = json!(script);
        }
        out
    }
}

fn ok(body: &Value) -> Reply {
    Reply::json(200, body)
}

fn error(status: u16, message: &str) -> Reply {
    Reply::json(status, &json!({"error": message}))
}
