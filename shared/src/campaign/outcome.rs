//! What a campaign send's answer means for the recipient, the number and the campaign.
//! Graph's error code decides where Meta documents it (see the research brief's table);
//! the adapter's class decides otherwise.

use crate::whatsapp::{SendError, Sent};

/// Per-recipient attempts at Meta's pair rate (131056) before the recipient is failed.
pub const MAX_PAIR_RATE_ATTEMPTS: u32 = 4;

#[derive(Debug, Clone, PartialEq, Eq)]
pub enum SendOutcome {
    Sent {
        wamid: String,
    },
    /// The number is over its throughput (130429): not sent; slow the number down and
    /// send it again.
    Throttled,
    /// Too many messages to this customer lately (131056): not sent; try this customer
    /// again later, the others go on.
    PairRate,
    /// Meta will not deliver it to this customer (131049, 131026, bad parameters...):
    /// recorded with the code (`None`: refused before sending), never retried.
    Failed {
        code: Option<i64>,
    },
    /// The template cannot be sent (paused, disabled, missing, wrong parameter count): not
    /// sent; the campaign pauses.
    TemplateStop {
        code: i64,
    },
    /// The account or number is blocked (spam limit, locked, policy, payment, token):
    /// not sent; the campaign pauses and a person is alerted.
    AccountStop {
        code: i64,
    },
    /// Meta was unavailable or the network failed: not sent; the batch is retried later.
    RetryLater {
        code: Option<i64>,
    },
    /// Meta may have taken it: never sent again blindly; its status settles it.
    Unknown,
}

impl SendOutcome {
    pub fn of(result: Result<Sent, SendError>) -> SendOutcome {
        let error = match result {
            Ok(sent) => return SendOutcome::Sent { wamid: sent.wamid },
            Err(error) => error,
        };
        match error.code() {
            Some(130429) => return SendOutcome::Throttled,
            Some(131056) => return SendOutcome::PairRate,
            // Per recipient: text too long once filled in, a parameter's format.
            Some(code @ (132005 | 132012)) => return SendOutcome::Failed { code: Some(code) },
            Some(code @ 132000..=132999) => return SendOutcome::TemplateStop { code },
            Some(code @ (131048 | 131031 | 368 | 131042)) => {
                return SendOutcome::AccountStop { code };
            }
            _ => {}
        }
        match error {
            SendError::Invalid(_) => SendOutcome::Failed { code: None },
            SendError::GiveUp { code, .. } => SendOutcome::Failed { code: Some(code) },
            SendError::Alarm { code, .. } => SendOutcome::AccountStop { code },
            SendError::RetryLater { code, .. } => SendOutcome::RetryLater { code },
            SendError::Unknown { .. } => SendOutcome::Unknown,
        }
    }

    /// Whether the message was not taken by Meta, so the recipient may be sent later.
    pub fn not_sent(&self) -> bool {
        matches!(
            self,
            SendOutcome::Throttled
                | SendOutcome::PairRate
                | SendOutcome::TemplateStop { .. }
                | SendOutcome::AccountStop { .. }
                | SendOutcome::RetryLater { .. }
        )
    }
}

/// How long to wait before the `attempt`-th retry of a customer at the pair rate: Meta
/// asks for 4^X seconds, X from 0 (at most SQS's longest delay, 15 minutes).
pub fn pair_rate_delay(attempt: u32) -> std::time::Duration {
    let seconds = 4u64.saturating_pow(attempt.saturating_sub(1)).min(900);
    std::time::Duration::from_secs(seconds)
}

#[cfg(test)]
mod tests {
    use super::*;
    use crate::whatsapp::outbound::LimitError;
    use std::time::Duration;

    fn give_up(code: i64) -> Result<Sent, SendError> {
        Err(SendError::GiveUp {
            code,
            message: String::new(),
        })
    }

    fn retry(code: i64) -> Result<Sent, SendError> {
        Err(SendError::RetryLater {
            code: Some(code),
            message: String::new(),
        })
    }

    #[test]
    fn each_code_has_its_consequence() {
        use SendOutcome::*;
        let sent = Ok(crate::whatsapp::Sent {
            wamid: "wamid.1".into(),
        });
        assert_eq!(
            SendOutcome::of(sent),
            Sent {
                wamid: "wamid.1".into()
            }
        );
        assert_eq!(SendOutcome::of(retry(130429)), Throttled);
        assert_eq!(SendOutcome::of(retry(131056)), PairRate);
        assert_eq!(
            SendOutcome::of(retry(131057)),
            RetryLater { code: Some(131057) }
        );
        for code in [131049, 131026, 131050, 130472, 132005, 132012] {
            assert_eq!(SendOutcome::of(give_up(code)), Failed { code: Some(code) });
        }
        for code in [132000, 132001, 132007, 132015, 132016] {
            assert_eq!(SendOutcome::of(give_up(code)), TemplateStop { code });
        }
        for code in [131048, 131031, 131042] {
            assert_eq!(SendOutcome::of(give_up(code)), AccountStop { code });
        }
        let alarm = Err(SendError::Alarm {
            code: 190,
            message: String::new(),
        });
        assert_eq!(SendOutcome::of(alarm), AccountStop { code: 190 });
        let unknown = Err(SendError::Unknown {
            message: String::new(),
        });
        assert_eq!(SendOutcome::of(unknown), Unknown);
        let invalid = Err(SendError::Invalid(LimitError {
            field: "template".into(),
            rule: "too long".into(),
        }));
        assert_eq!(SendOutcome::of(invalid), Failed { code: None });
    }

    #[test]
    fn only_what_meta_did_not_take_may_be_sent_again() {
        assert!(SendOutcome::Throttled.not_sent());
        assert!(SendOutcome::TemplateStop { code: 132015 }.not_sent());
        assert!(!SendOutcome::Unknown.not_sent());
        assert!(!SendOutcome::Failed { code: Some(131049) }.not_sent());
    }

    #[test]
    fn the_pair_rate_waits_four_to_the_attempt() {
        assert_eq!(pair_rate_delay(1), Duration::from_secs(1));
        assert_eq!(pair_rate_delay(2), Duration::from_secs(4));
        assert_eq!(pair_rate_delay(3), Duration::from_secs(16));
        assert_eq!(pair_rate_delay(10), Duration::from_secs(900));
    }
}
