//! A send asked for through the platform API. Decided from the session at the moment it is
//! made: the API refuses a text outside the 24 h window at once, and the worker decides
//! again when it handles the event (the customer's window may have closed in between).

use thiserror::Error;

use super::{DateTime, Outbound, Session, Utc};
use crate::envelope::SendContent;

/// Why an API send is not made.
#[derive(Debug, Clone, PartialEq, Eq, Error)]
pub enum SendRefusal {
    #[error(
        "outside the 24-hour customer service window (no message from the customer in the last 24 hours): only an approved template can be sent"
    )]
    OutsideWindow,
}

/// The message an API send becomes, or why it is refused: a text only inside the customer
/// service window of `session` (none: the customer never wrote), a template any time.
pub fn api_send(
    session: Option<&Session>,
    content: &SendContent,
    now: DateTime<Utc>,
) -> Result<Outbound, SendRefusal> {
    match content {
        SendContent::Text { body } => {
            if session.is_some_and(|session| session.in_service_window(now)) {
                Ok(Outbound::text(body))
            } else {
                Err(SendRefusal::OutsideWindow)
            }
        }
        SendContent::Template {
            name,
            language,
            components,
        } => Ok(Outbound::GraphTemplate {
            name: name.clone(),
            language: language.clone(),
            components: components.clone(),
        }),
    }
}

#[cfg(test)]
mod tests {
    use chrono::Duration;
    use serde_json::json;

    use super::*;

    fn session_written_at(at: DateTime<Utc>) -> Session {
        let mut session = Session::new("111", "5511", at);
        session.last_message_at = at.timestamp();
        session
    }

    fn text() -> SendContent {
        SendContent::Text {
            body: "Seu pedido saiu.".into(),
        }
    }

    #[test]
    fn a_text_goes_only_inside_the_window() {
        let now: DateTime<Utc> = "2026-11-23T17:00:00Z".parse().unwrap();
        let recent = session_written_at(now - Duration::hours(23));
        assert_eq!(
            api_send(Some(&recent), &text(), now),
            Ok(Outbound::text("Seu pedido saiu."))
        );
        let old = session_written_at(now - Duration::hours(24));
        assert_eq!(
            api_send(Some(&old), &text(), now),
            Err(SendRefusal::OutsideWindow)
        );
        assert_eq!(
            api_send(None, &text(), now),
            Err(SendRefusal::OutsideWindow)
        );
    }

    #[test]
    fn a_template_goes_any_time_with_its_components_as_given() {
        let now: DateTime<Utc> = "2026-11-23T17:00:00Z".parse().unwrap();
        let components =
            vec![json!({"type": "body", "parameters": [{"type": "text", "text": "Ana"}]})];
        let template = SendContent::Template {
            name: "pedido_pronto".into(),
            language: "pt_BR".into(),
            components: components.clone(),
        };
        let expected = Outbound::GraphTemplate {
            name: "pedido_pronto".into(),
            language: "pt_BR".into(),
            components,
        };
        let old = session_written_at(now - Duration::days(3));
        assert_eq!(api_send(Some(&old), &template, now), Ok(expected.clone()));
        assert_eq!(api_send(None, &template, now), Ok(expected));
    }
}
