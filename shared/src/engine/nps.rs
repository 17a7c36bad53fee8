//! Closing a conversation and the NPS question.

use super::*;

impl Turn<'_> {
    pub(super) fn close(&mut self) {
        self.session.attempts = 0;
        if self.tenant.nps.enabled {
            self.session.state = State::Nps;
            let question = self.tenant.nps.question.clone();
            self.send_or_template(&question, self.tenant.templates.nps.as_ref(), false);
        } else {
            self.session.state = State::Closed;
            // Outside the window a goodbye would only reach them as the generic fallback
            // template: not worth a paid message.
            if self.session.in_service_window(self.now) {
                self.send(Outbound::text(&self.tenant.nps.goodbye));
            }
        }
    }

    pub(super) fn answer_nps(&mut self, input: &Input) {
        match nps_score(input) {
            Some(score) => {
                self.session.nps_score = Some(score);
                self.session.state = State::Closed;
                self.send(Outbound::text(&self.tenant.nps.thanks));
            }
            None => {
                self.session.attempts += 1;
                if self.session.attempts >= self.tenant.max_bot_attempts {
                    self.session.state = State::Closed;
                    self.send(Outbound::text(&self.tenant.nps.goodbye));
                } else {
                    self.send(Outbound::text(&self.tenant.nps.question));
                }
            }
        }
    }
}

/// A 0-10 score from a reply id or title, or a text that is just the number.
fn nps_score(input: &Input) -> Option<u8> {
    let text = match input {
        Input::Choice { id, title } => {
            let digits = id.trim_start_matches(|c: char| !c.is_ascii_digit());
            return digits
                .parse()
                .ok()
                .or_else(|| title.trim().parse().ok())
                .filter(|s| *s <= 10);
        }
        Input::Text(text) => normalize(text),
        _ => return None,
    };
    text.parse::<u8>().ok().filter(|score| *score <= 10)
}
