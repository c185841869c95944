//! The one walk over a cell's spans and a finding's lines, for every sink: a sink says what its
//! format makes of each kind of span ([`Markup`]), and [`cell`] and [`item`] put them together.

use super::{Cell, FindingItem, Pill, Span, Tag, Target};

/// What a format makes of each kind of span; every method escapes the text it is given.
pub trait Markup {
    /// Words.
    fn text(&self, text: &str) -> String;
    /// A short identifier, monospace.
    fn code(&self, text: &str) -> String;
    /// A long monospace string that may wrap.
    fn long_code(&self, text: &str) -> String;
    /// Words set off (a reason).
    fn em(&self, text: &str) -> String;
    /// Words that stand out (a label).
    fn strong(&self, text: &str) -> String;
    /// What separates two parts of one cell.
    fn line_break(&self) -> String;
    /// A link to a finding, by id.
    fn finding_link(&self, id: &str) -> String;
    /// A link to a scenario, by id.
    fn scenario_link(&self, id: &str) -> String;
    /// A reference to a clause: its section and id.
    fn clause_link(&self, id: &str, section: &str) -> String;
    /// A sentence of the policy, quoted.
    fn quote(&self, sentence: &str) -> String;
    /// A state, with the report's word for it.
    fn pill(&self, pill: &Pill, text: &str) -> String;
}

/// A cell in the sink's format.
pub fn cell(m: &impl Markup, cell: &Cell) -> String {
    cell.iter().map(|s| span(m, s)).collect()
}

fn span(m: &impl Markup, s: &Span) -> String {
    let t = &s.text;
    match &s.tag {
        Tag::Text => m.text(t),
        Tag::Code => m.code(t),
        Tag::LongCode => m.long_code(t),
        Tag::Em => m.em(t),
        Tag::Break => m.line_break(),
        Tag::Link(Target::Finding) => m.finding_link(t),
        Tag::Link(Target::Scenario) => m.scenario_link(t),
        Tag::Pill(p) => m.pill(p, t),
    }
}

/// A line under a finding's heading in the sink's format.
pub fn item(m: &impl Markup, item: &FindingItem) -> String {
    match item {
        FindingItem::Breaks {
            id,
            clause: Some((section, sentence)),
        } => format!(
            "Breaks {}: {}",
            m.clause_link(id, section),
            m.quote(sentence)
        ),
        FindingItem::Breaks { id, clause: None } => format!("Breaks {}", m.code(id)),
        FindingItem::Scenario(c) => format!("Scenario {}", cell(m, c)),
        FindingItem::Waived(w) => format!("{} {}", m.strong("Waived:"), m.text(w)),
    }
}
