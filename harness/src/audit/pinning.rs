//! Certificate pinning: a backend that refuses the audit's certificate sends the providers
//! nothing the mocks can see, so what it would send stays unknown and the audit cannot pass.

use traceless_mock::{Provider, RecordedRequest, TlsRefusal};

/// Why the audit is incomplete, if the pipeline refused the mocks' certificate. A certificate
/// alert is a refusal on its own; a silent hang-up right after the handshake (fingerprint
/// pinning) counts only for a provider that never got a request over TLS, since a client
/// cancelling a call at the wrong moment can look the same once.
pub fn error<'a>(
    refusals: &[TlsRefusal],
    recorded: impl IntoIterator<Item = &'a RecordedRequest>,
    ca_vars: &[String],
) -> Option<String> {
    let served_tls: Vec<Provider> = recorded
        .into_iter()
        .filter(|r| r.tls)
        .map(|r| r.provider)
        .collect();
    let mut lines = Vec::new();
    for provider in [Provider::OpenAi, Provider::Gemini] {
        let mine: Vec<&TlsRefusal> = refusals.iter().filter(|r| r.provider == provider).collect();
        let served = served_tls.contains(&provider);
        let decisive: Vec<&&TlsRefusal> = mine.iter().filter(|r| r.alert || !served).collect();
        if let Some(first) = decisive.first() {
            lines.push(format!(
                "{provider}: {} connection(s) refused, e.g. the pipeline {}",
                decisive.len(),
                first.how
            ));
        }
    }
    if lines.is_empty() {
        return None;
    }
    Some(format!(
        "the pipeline refused the audit's TLS certificate ({}): it pins the providers' certificates \
         or ignores the audit's CA (handed to it in {}), so what it sends to the providers could not \
         be seen; make it trust the CA in the `{{ca_file}}` placeholder (a `[pipeline.env]` entry or \
         `[interception] ca_env`) for the audit",
        lines.join("; "),
        ca_vars.join(", ")
    ))
}

#[cfg(test)]
mod tests {
    use super::*;
    use std::time::SystemTime;

    fn refusal(provider: Provider, alert: bool) -> TlsRefusal {
        TlsRefusal {
            at: SystemTime::now(),
            provider,
            how: if alert {
                "sent the TLS alert UnknownCA".into()
            } else {
                "hung up".into()
            },
            alert,
        }
    }

    fn vars() -> Vec<String> {
        vec!["SSL_CERT_FILE".to_owned()]
    }

    #[test]
    fn an_alert_makes_the_audit_incomplete() {
        let e = error(&[refusal(Provider::OpenAi, true)], &[], &vars()).expect("an error");
        assert!(e.contains("openai: 1 connection(s) refused"), "{e}");
        assert!(
            e.contains("UnknownCA") && e.contains("SSL_CERT_FILE"),
            "{e}"
        );
    }

    #[test]
    fn no_refusal_no_error() {
        assert_eq!(error(&[], &[], &vars()), None);
    }

    #[test]
    fn a_silent_hang_up_counts_only_without_any_request_over_tls() {
        let hang_up = [refusal(Provider::Gemini, false)];
        assert!(error(&hang_up, &[], &vars()).is_some_and(|e| e.contains("gemini: 1")));
        let served: RecordedRequest = serde_json::from_value(serde_json::json!({
            "seq": 0, "at": SystemTime::now(), "provider": "gemini", "tls": true, "method": "POST",
            "path": "/v1beta/models/m:generateContent", "query": null, "headers": [], "body": "",
            "endpoint": "models", "model": null, "user": null, "store": null,
            "images": [], "prompt": null, "rejected": null, "behaviour": "ok", "status": 200,
            "output-image": null
        }))
        .expect("a recorded request");
        assert_eq!(error(&hang_up, &[served], &vars()), None);
    }
}
