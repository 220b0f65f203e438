//! Why a change cannot be made to a case, or a practice circulated: the
//! stable codes the command results and the CLI give (the library, below
//! the cases, refuses with them too).

/// Why a change cannot be made to a case.
#[derive(Debug, Clone, PartialEq, Eq)]
pub enum Refusal {
    NoCase,
    ClosedAlready,
    OpenAlready,
    NoParty(String),
    OwedAlready(String),
    /// A command mail that cannot be carried out as written.
    NotUnderstood(String),
    /// No accepted best practice has the reference (circulate).
    NoPractice,
    /// The practice's content was deleted by the retention policy.
    ContentDeleted,
}

impl Refusal {
    /// The stable code, as the `command_result` templates read it.
    pub fn code(&self) -> &'static str {
        match self {
            Refusal::NoCase => "no_case",
            Refusal::ClosedAlready => "closed_already",
            Refusal::OpenAlready => "open_already",
            Refusal::NoParty(_) => "no_party",
            Refusal::OwedAlready(_) => "owed_already",
            Refusal::NotUnderstood(_) => "not_understood",
            Refusal::NoPractice => "no_practice",
            Refusal::ContentDeleted => "content_deleted",
        }
    }

    /// What it says, for a person, about the case of `reference`.
    pub fn explain(&self, reference: &str) -> String {
        match self {
            Refusal::NoCase => format!("no case has the reference {reference}"),
            Refusal::ClosedAlready => format!("{reference} is closed already"),
            Refusal::OpenAlready => format!("{reference} is open already"),
            Refusal::NoParty(p) => format!("no party {p} in the directory"),
            Refusal::OwedAlready(p) => format!("{reference} is owed by {p} already"),
            Refusal::NotUnderstood(why) => format!("the command is not understood: {why}"),
            Refusal::NoPractice => {
                format!("no accepted best practice has the reference {reference}")
            }
            Refusal::ContentDeleted => format!(
                "the content of {reference} was deleted by the retention policy ([retention])"
            ),
        }
    }
}
