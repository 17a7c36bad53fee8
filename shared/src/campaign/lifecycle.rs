//! A campaign's lifecycle and who may move it along (pure). `platform::campaigns` stores
//! campaigns and applies these rules for the API and the ops CLI; the dispatcher and the
//! sender move running campaigns as the system.
//!
//! Lifecycle:
//! `draft → submitted → approved | rejected`; `approved → scheduled` (its `start_at` in the
//! future) `| running`; `scheduled → running`; `running ↔ paused`; `running → done`; and
//! `draft | submitted | approved | scheduled | running | paused → cancelled`.
//! `rejected`, `cancelled` and `done` are final.
//!
//! Who: an API key with `campaigns:write` creates, edits a draft, imports the audience,
//! submits, pauses and cancels; it never approves, rejects or resumes (each starts or
//! restarts sending to customers: a person's decision). A person who decides (a supervisor
//! or admin of the tenant, or a platform admin) may do all of it, but never approves or
//! rejects a campaign they wrote, submitted, or that was written for them.

use std::fmt;
use std::str::FromStr;

use serde::{Deserialize, Serialize};

/// Campaign ids: this prefix and 26 base32 characters.
pub const ID_PREFIX: &str = "cmp_";

/// Where a campaign stands.
#[derive(Debug, Clone, Copy, PartialEq, Eq, Hash, Serialize, Deserialize)]
#[serde(rename_all = "snake_case")]
pub enum State {
    Draft,
    Submitted,
    Approved,
    Rejected,
    Scheduled,
    Running,
    Paused,
    Cancelled,
    Done,
}

impl State {
    pub const ALL: [State; 9] = [
        State::Draft,
        State::Submitted,
        State::Approved,
        State::Rejected,
        State::Scheduled,
        State::Running,
        State::Paused,
        State::Cancelled,
        State::Done,
    ];

    pub fn as_str(self) -> &'static str {
        match self {
            State::Draft => "draft",
            State::Submitted => "submitted",
            State::Approved => "approved",
            State::Rejected => "rejected",
            State::Scheduled => "scheduled",
            State::Running => "running",
            State::Paused => "paused",
            State::Cancelled => "cancelled",
            State::Done => "done",
        }
    }

    /// Nothing moves a campaign out of these.
    pub fn is_final(self) -> bool {
        matches!(self, State::Rejected | State::Cancelled | State::Done)
    }
}

impl fmt::Display for State {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        f.write_str(self.as_str())
    }
}

impl FromStr for State {
    type Err = String;
    fn from_str(text: &str) -> Result<Self, String> {
        State::ALL
            .into_iter()
            .find(|state| state.as_str() == text)
            .ok_or_else(|| {
                format!(
                    "unknown state `{text}` (draft, submitted, approved, rejected, scheduled, running, paused, cancelled, done)"
                )
            })
    }
}

/// What is done to a campaign.
#[derive(Debug, Clone, Copy, PartialEq, Eq, Hash)]
pub enum Operation {
    /// Change a draft's fields.
    Edit,
    /// Import its audience (a draft's).
    Import,
    Submit,
    Approve,
    Reject,
    /// Start an approved campaign: `scheduled` while its start is in the future, else
    /// `running` (done right after approval, by the approval itself).
    Schedule {
        start_in_future: bool,
    },
    /// A scheduled campaign's start came (the dispatcher).
    Start,
    Pause,
    Resume,
    Cancel,
    /// Every recipient handled (the dispatcher).
    Finish,
}

impl Operation {
    pub fn as_str(self) -> &'static str {
        match self {
            Operation::Edit => "edit",
            Operation::Import => "import",
            Operation::Submit => "submit",
            Operation::Approve => "approve",
            Operation::Reject => "reject",
            Operation::Schedule { .. } => "schedule",
            Operation::Start => "start",
            Operation::Pause => "pause",
            Operation::Resume => "resume",
            Operation::Cancel => "cancel",
            Operation::Finish => "finish",
        }
    }
}

impl fmt::Display for Operation {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        f.write_str(self.as_str())
    }
}

/// The state `operation` leads to from `from`, or the refusal naming both.
pub fn next_state(from: State, operation: Operation) -> Result<State, CampaignError> {
    use State::*;
    let to = match (from, operation) {
        (Draft, Operation::Edit | Operation::Import) => Draft,
        (Draft, Operation::Submit) => Submitted,
        (Submitted, Operation::Approve) => Approved,
        (Submitted, Operation::Reject) => Rejected,
        (Approved, Operation::Schedule { start_in_future }) => {
            if start_in_future {
                Scheduled
            } else {
                Running
            }
        }
        (Scheduled, Operation::Start) => Running,
        (Running, Operation::Pause) => Paused,
        (Paused, Operation::Resume) => Running,
        (Running, Operation::Finish) => Done,
        (Draft | Submitted | Approved | Scheduled | Running | Paused, Operation::Cancel) => {
            Cancelled
        }
        _ => return Err(CampaignError::Transition { from, operation }),
    };
    Ok(to)
}

/// Who acts, as the campaign rules see them (the platform derives it from the caller's
/// scopes and role in the tenant).
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub enum Actor<'a> {
    /// An API key of the tenant (or the provider's); `writes`: it has `campaigns:write`.
    Key { id: &'a str, writes: bool },
    /// A person (Cognito `sub`); `decides`: a supervisor or admin of the tenant, or a
    /// platform admin.
    Person { sub: &'a str, decides: bool },
    /// The provider's operator at the ops CLI (the stack's AWS credentials), by name: stops
    /// campaigns, never writes or decides them.
    Operator { name: &'a str },
    /// The sending side (the dispatcher, the sender) by component name: starts scheduled
    /// campaigns, pauses on WhatsApp's signals, finishes them.
    System { component: &'a str },
}

impl Actor<'_> {
    /// The id audit entries and `created_by` use: `key:<id>`, `person:<sub>`.
    pub fn id(&self) -> String {
        match self {
            Actor::Key { id, .. } => format!("key:{id}"),
            Actor::Person { sub, .. } => format!("person:{sub}"),
            Actor::Operator { name } => format!("ops:{name}"),
            Actor::System { component } => format!("system:{component}"),
        }
    }
}

/// Who wrote a campaign and for whom, as stored (`created_by`, `on_behalf_of`, `submitted_by`).
#[derive(Debug, Clone, Copy, PartialEq, Eq, Default)]
pub struct Authorship<'a> {
    /// `key:<id>` or `person:<sub>`.
    pub created_by: &'a str,
    /// A person's sub.
    pub on_behalf_of: Option<&'a str>,
    /// `key:<id>` or `person:<sub>`, once submitted.
    pub submitted_by: Option<&'a str>,
}

/// A rule of who may do what, each named so a refusal says which one it met.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub enum Rule {
    /// Creating, editing, importing and submitting need `campaigns:write` (a key) or a
    /// supervisor's or admin's role (a person).
    WriteNeedsScopeOrRole,
    /// Approving and rejecting are people's decisions.
    KeysNeverDecide,
    /// Resuming restarts sending to customers: a person's decision.
    KeysNeverResume,
    /// Only a supervisor or admin of the tenant, or a platform admin, decides, pauses,
    /// resumes and cancels.
    DecidersOnly,
    /// Nobody approves or rejects a campaign they wrote or submitted.
    AuthorNeverDecides,
    /// Nobody approves or rejects a campaign written for them.
    BeneficiaryNeverDecides,
    /// A key writes a campaign for a named person (`on_behalf_of`), who answers for it.
    KeyNamesItsPerson,
    /// The operator only stops campaigns (pause, cancel): the tenant's people run them.
    OperatorOnlyStops,
    /// Starting a scheduled campaign and finishing a sent one are the sending system's.
    SystemStartsAndFinishes,
    /// The sending system only starts, pauses and finishes.
    SystemOnlyRuns,
}

impl Rule {
    /// A stable name for problem details and logs.
    pub fn name(self) -> &'static str {
        match self {
            Rule::WriteNeedsScopeOrRole => "write_needs_scope_or_role",
            Rule::KeysNeverDecide => "keys_never_decide",
            Rule::KeysNeverResume => "keys_never_resume",
            Rule::DecidersOnly => "deciders_only",
            Rule::AuthorNeverDecides => "author_never_decides",
            Rule::BeneficiaryNeverDecides => "beneficiary_never_decides",
            Rule::KeyNamesItsPerson => "key_names_its_person",
            Rule::OperatorOnlyStops => "operator_only_stops",
            Rule::SystemStartsAndFinishes => "system_starts_and_finishes",
            Rule::SystemOnlyRuns => "system_only_runs",
        }
    }

    fn text(self) -> &'static str {
        match self {
            Rule::WriteNeedsScopeOrRole => {
                "writing a campaign needs an API key with campaigns:write or a supervisor or admin of the tenant"
            }
            Rule::KeysNeverDecide => {
                "only a person approves or rejects a campaign, never an API key"
            }
            Rule::KeysNeverResume => "only a person resumes a campaign, never an API key",
            Rule::DecidersOnly => {
                "only a supervisor or admin of the tenant (or a platform admin) may do this"
            }
            Rule::AuthorNeverDecides => "the author of a campaign may not approve or reject it",
            Rule::BeneficiaryNeverDecides => {
                "the person a campaign was written for may not approve or reject it"
            }
            Rule::KeyNamesItsPerson => {
                "a campaign written with an API key names the person it is for (on_behalf_of)"
            }
            Rule::OperatorOnlyStops => {
                "the operator only pauses and cancels campaigns; the tenant's people run them"
            }
            Rule::SystemStartsAndFinishes => {
                "only the sending system starts a scheduled campaign or finishes one"
            }
            Rule::SystemOnlyRuns => "the sending system only starts, pauses and finishes campaigns",
        }
    }
}

impl fmt::Display for Rule {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        write!(f, "{} (rule {})", self.text(), self.name())
    }
}

#[derive(Debug, Clone, PartialEq, Eq, thiserror::Error)]
pub enum CampaignError {
    #[error("a campaign in state {from} cannot {operation}")]
    Transition { from: State, operation: Operation },
    #[error("{0}")]
    Denied(Rule),
}

/// May `actor` create a campaign (for `on_behalf_of`, required of a key)?
pub fn may_create(actor: Actor<'_>, on_behalf_of: Option<&str>) -> Result<(), CampaignError> {
    match actor {
        Actor::Key { writes: false, .. } | Actor::Person { decides: false, .. } => {
            Err(CampaignError::Denied(Rule::WriteNeedsScopeOrRole))
        }
        Actor::Key { .. } if on_behalf_of.is_none_or(str::is_empty) => {
            Err(CampaignError::Denied(Rule::KeyNamesItsPerson))
        }
        Actor::Operator { .. } => Err(CampaignError::Denied(Rule::OperatorOnlyStops)),
        Actor::System { .. } => Err(CampaignError::Denied(Rule::SystemOnlyRuns)),
        _ => Ok(()),
    }
}

/// May `actor` do `operation` to a campaign of `authorship` (whatever its state)?
/// `Schedule` is part of an approval (checked as the approval); `Start` and `Finish` are
/// the sending system's.
pub fn may(
    actor: Actor<'_>,
    authorship: &Authorship<'_>,
    operation: Operation,
) -> Result<(), CampaignError> {
    let denied = |rule| Err(CampaignError::Denied(rule));
    match (operation, actor) {
        (Operation::Schedule { .. }, _) => Ok(()),
        (Operation::Start | Operation::Finish | Operation::Pause, Actor::System { .. }) => Ok(()),
        (_, Actor::System { .. }) => denied(Rule::SystemOnlyRuns),
        (Operation::Start | Operation::Finish, _) => denied(Rule::SystemStartsAndFinishes),
        (Operation::Pause | Operation::Cancel, Actor::Operator { .. }) => Ok(()),
        (_, Actor::Operator { .. }) => denied(Rule::OperatorOnlyStops),
        (Operation::Edit | Operation::Import | Operation::Submit, _) => match actor {
            Actor::Key { writes: true, .. } | Actor::Person { decides: true, .. } => Ok(()),
            _ => denied(Rule::WriteNeedsScopeOrRole),
        },
        (Operation::Approve | Operation::Reject, Actor::Key { .. }) => {
            denied(Rule::KeysNeverDecide)
        }
        (Operation::Approve | Operation::Reject, Actor::Person { decides: false, .. }) => {
            denied(Rule::DecidersOnly)
        }
        (Operation::Approve | Operation::Reject, Actor::Person { sub, .. }) => {
            let me = actor.id();
            if authorship.created_by == me || authorship.submitted_by == Some(me.as_str()) {
                denied(Rule::AuthorNeverDecides)
            } else if authorship.on_behalf_of == Some(sub) {
                denied(Rule::BeneficiaryNeverDecides)
            } else {
                Ok(())
            }
        }
        (Operation::Pause | Operation::Cancel, Actor::Key { writes, .. }) => {
            if writes {
                Ok(())
            } else {
                denied(Rule::WriteNeedsScopeOrRole)
            }
        }
        (Operation::Resume, Actor::Key { .. }) => denied(Rule::KeysNeverResume),
        (
            Operation::Pause | Operation::Cancel | Operation::Resume,
            Actor::Person { decides, .. },
        ) => {
            if decides {
                Ok(())
            } else {
                denied(Rule::DecidersOnly)
            }
        }
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    const OPERATIONS: [Operation; 12] = [
        Operation::Edit,
        Operation::Import,
        Operation::Submit,
        Operation::Approve,
        Operation::Reject,
        Operation::Schedule {
            start_in_future: true,
        },
        Operation::Schedule {
            start_in_future: false,
        },
        Operation::Start,
        Operation::Pause,
        Operation::Resume,
        Operation::Cancel,
        Operation::Finish,
    ];

    #[test]
    fn the_lifecycle_moves_only_along_its_arrows() {
        use State::*;
        let allowed = [
            (Draft, Operation::Edit, Draft),
            (Draft, Operation::Import, Draft),
            (Draft, Operation::Submit, Submitted),
            (Submitted, Operation::Approve, Approved),
            (Submitted, Operation::Reject, Rejected),
            (Approved, OPERATIONS[5], Scheduled),
            (Approved, OPERATIONS[6], Running),
            (Scheduled, Operation::Start, Running),
            (Running, Operation::Pause, Paused),
            (Paused, Operation::Resume, Running),
            (Running, Operation::Finish, Done),
            (Draft, Operation::Cancel, Cancelled),
            (Submitted, Operation::Cancel, Cancelled),
            (Approved, Operation::Cancel, Cancelled),
            (Scheduled, Operation::Cancel, Cancelled),
            (Running, Operation::Cancel, Cancelled),
            (Paused, Operation::Cancel, Cancelled),
        ];
        for from in State::ALL {
            for operation in OPERATIONS {
                let expected = allowed
                    .iter()
                    .find(|(f, o, _)| *f == from && *o == operation)
                    .map(|(_, _, to)| *to);
                match (next_state(from, operation), expected) {
                    (Ok(to), Some(expected)) => assert_eq!(to, expected, "{from} {operation}"),
                    (Err(CampaignError::Transition { .. }), None) => {}
                    (got, expected) => panic!("{from} {operation}: {got:?}, expected {expected:?}"),
                }
            }
        }
        for state in [Rejected, Cancelled, Done] {
            assert!(state.is_final());
            assert!(OPERATIONS.iter().all(|o| next_state(state, *o).is_err()));
        }
    }

    #[test]
    fn a_refused_transition_names_the_state_and_the_operation() {
        let error = next_state(State::Done, Operation::Resume).unwrap_err();
        assert_eq!(error.to_string(), "a campaign in state done cannot resume");
    }

    #[test]
    fn states_read_back_from_their_names() {
        for state in State::ALL {
            assert_eq!(state.as_str().parse::<State>(), Ok(state));
            assert_eq!(
                serde_json::to_value(state).unwrap(),
                serde_json::Value::from(state.as_str())
            );
        }
        assert!("finished".parse::<State>().is_err());
    }

    const KEY: Actor = Actor::Key {
        id: "k1",
        writes: true,
    };
    const READ_KEY: Actor = Actor::Key {
        id: "k2",
        writes: false,
    };
    const AUTHOR: Actor = Actor::Person {
        sub: "ana",
        decides: true,
    };
    const SUPERVISOR: Actor = Actor::Person {
        sub: "bia",
        decides: true,
    };
    const AGENT: Actor = Actor::Person {
        sub: "caio",
        decides: false,
    };

    fn denied(result: Result<(), CampaignError>) -> Rule {
        match result {
            Err(CampaignError::Denied(rule)) => rule,
            other => panic!("{other:?}"),
        }
    }

    #[test]
    fn keys_write_and_stop_campaigns_but_never_decide_or_resume() {
        let by_key = Authorship {
            created_by: "key:k1",
            on_behalf_of: Some("ana"),
            submitted_by: Some("key:k1"),
        };
        for operation in [
            Operation::Edit,
            Operation::Import,
            Operation::Submit,
            Operation::Pause,
            Operation::Cancel,
        ] {
            assert_eq!(may(KEY, &by_key, operation), Ok(()), "{operation}");
            assert_eq!(
                denied(may(READ_KEY, &by_key, operation)),
                Rule::WriteNeedsScopeOrRole
            );
        }
        assert_eq!(
            denied(may(KEY, &by_key, Operation::Approve)),
            Rule::KeysNeverDecide
        );
        assert_eq!(
            denied(may(KEY, &by_key, Operation::Reject)),
            Rule::KeysNeverDecide
        );
        assert_eq!(
            denied(may(KEY, &by_key, Operation::Resume)),
            Rule::KeysNeverResume
        );
        assert_eq!(may_create(KEY, Some("ana")), Ok(()));
        assert_eq!(denied(may_create(KEY, None)), Rule::KeyNamesItsPerson);
        assert_eq!(denied(may_create(KEY, Some(""))), Rule::KeyNamesItsPerson);
        assert_eq!(
            denied(may_create(READ_KEY, Some("ana"))),
            Rule::WriteNeedsScopeOrRole
        );
    }

    #[test]
    fn nobody_decides_their_own_campaign_or_one_written_for_them() {
        let by_ana = Authorship {
            created_by: "person:ana",
            on_behalf_of: None,
            submitted_by: Some("person:ana"),
        };
        let for_ana = Authorship {
            created_by: "key:k1",
            on_behalf_of: Some("ana"),
            submitted_by: Some("key:k1"),
        };
        let submitted_by_ana = Authorship {
            created_by: "person:bia",
            on_behalf_of: None,
            submitted_by: Some("person:ana"),
        };
        for operation in [Operation::Approve, Operation::Reject] {
            assert_eq!(
                denied(may(AUTHOR, &by_ana, operation)),
                Rule::AuthorNeverDecides
            );
            assert_eq!(
                denied(may(AUTHOR, &submitted_by_ana, operation)),
                Rule::AuthorNeverDecides
            );
            assert_eq!(
                denied(may(AUTHOR, &for_ana, operation)),
                Rule::BeneficiaryNeverDecides
            );
            assert_eq!(may(SUPERVISOR, &by_ana, operation), Ok(()));
            assert_eq!(may(SUPERVISOR, &for_ana, operation), Ok(()));
            assert_eq!(denied(may(AGENT, &by_ana, operation)), Rule::DecidersOnly);
        }
        // Stopping and resuming their own campaign is fine.
        for operation in [Operation::Pause, Operation::Resume, Operation::Cancel] {
            assert_eq!(may(AUTHOR, &by_ana, operation), Ok(()));
            assert_eq!(denied(may(AGENT, &by_ana, operation)), Rule::DecidersOnly);
        }
        assert_eq!(may_create(AUTHOR, None), Ok(()));
        assert_eq!(denied(may_create(AGENT, None)), Rule::WriteNeedsScopeOrRole);
    }

    #[test]
    fn the_operator_only_stops_campaigns() {
        let operator = Actor::Operator { name: "maria" };
        assert_eq!(operator.id(), "ops:maria");
        let by_ana = Authorship {
            created_by: "person:ana",
            ..Authorship::default()
        };
        for operation in [Operation::Pause, Operation::Cancel] {
            assert_eq!(may(operator, &by_ana, operation), Ok(()));
        }
        for operation in [
            Operation::Edit,
            Operation::Import,
            Operation::Submit,
            Operation::Approve,
            Operation::Reject,
            Operation::Resume,
        ] {
            assert_eq!(
                denied(may(operator, &by_ana, operation)),
                Rule::OperatorOnlyStops
            );
        }
        assert_eq!(denied(may_create(operator, None)), Rule::OperatorOnlyStops);
    }

    #[test]
    fn only_the_sending_system_starts_and_finishes_and_it_may_pause() {
        let system = Actor::System {
            component: "dispatcher",
        };
        assert_eq!(system.id(), "system:dispatcher");
        let any = Authorship::default();
        for operation in [Operation::Start, Operation::Finish, Operation::Pause] {
            assert_eq!(may(system, &any, operation), Ok(()));
        }
        for operation in [Operation::Resume, Operation::Approve, Operation::Cancel] {
            assert_eq!(denied(may(system, &any, operation)), Rule::SystemOnlyRuns);
        }
        for actor in [KEY, SUPERVISOR, Actor::Operator { name: "maria" }] {
            for operation in [Operation::Start, Operation::Finish] {
                assert_eq!(
                    denied(may(actor, &any, operation)),
                    Rule::SystemStartsAndFinishes
                );
            }
        }
    }

    #[test]
    fn a_refusal_names_its_rule() {
        let text = CampaignError::Denied(Rule::AuthorNeverDecides).to_string();
        assert!(text.contains("rule author_never_decides"), "{text}");
        assert!(text.contains("author"), "{text}");
    }
}
