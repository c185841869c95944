//! What judging needs of the audit's inputs, as plain data: the clause map, the waivers, each
//! scenario's plan, and the per-request facts (age, client behaviour) the checks weigh. The
//! harness loads and validates them from files; judging only reads them.

/// The scenario id of the property cases, in the evidence and the report.
pub const PROPERTY_SCENARIO: &str = "properties";

/// One sentence of the policy and the finding kinds that verify it.
#[derive(Debug, Clone)]
pub struct Clause {
    pub id: String,
    pub section: String,
    pub title: String,
    pub sentence: String,
    pub checks: Vec<String>,
    /// Why the clause cannot be tested by a black-box audit, when it cannot.
    pub untestable: Option<String>,
}

/// An accepted finding kind or clause, with a justification and an expiry date.
#[derive(Debug, Clone)]
pub struct Waiver {
    pub target: WaiverTarget,
    pub justification: String,
    pub expires: time::Date,
    /// Its line in the config, for the report.
    pub line: usize,
}

#[derive(Debug, Clone, PartialEq, Eq)]
pub enum WaiverTarget {
    Kind(String),
    Clause(String),
}

impl WaiverTarget {
    pub fn label(&self) -> &str {
        match self {
            WaiverTarget::Kind(k) | WaiverTarget::Clause(k) => k,
        }
    }
}

/// What a scenario set out to do: judged against what it did.
#[derive(Debug, Clone, Default)]
pub struct ScenarioPlan {
    pub id: String,
    pub title: String,
    pub clauses: Vec<String>,
    /// Requests it holds (every entry's `repeat`, summed). Property cases are planned as a number
    /// of cases, which the evidence carries.
    pub requests: u32,
}

/// The age a request's client declared.
#[derive(Debug, Clone, Copy, PartialEq, Eq, serde::Serialize)]
#[serde(rename_all = "kebab-case")]
pub enum Age {
    Confirmed,
    Omitted,
    Denied,
}

/// How the harness's client behaved on a request.
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
