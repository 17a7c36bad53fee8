//! The AI attendant's turns: a question asked, an answer or a handoff received.

use super::*;

impl Turn<'_> {
    /// A customer message for the attendant: a question for Claude, within the turn and token
    /// limits; media gets the configured reply or a person.
    pub(super) fn answer_ai(&mut self, input: &Input) {
        let tenant = self.tenant;
        let ai = &tenant.ai;
        if !self.tenant.features.ai_enabled {
            return self.go(&Target::Ai);
        }
        let question = match input {
            Input::Text(text) if !text.trim().is_empty() => text.trim().to_owned(),
            Input::Choice { title, .. } if !title.trim().is_empty() => title.trim().to_owned(),
            _ => {
                return match ai.media_reply.clone() {
                    Some(reply) => self.not_understood(|turn| turn.send(Outbound::text(reply))),
                    None => self.ai_handoff("non-text message".into(), None),
                };
            }
        };
        let conversation = self.session.ai.get_or_insert_default();
        let spent = conversation.answers >= ai.max_turns
            || conversation.usage.tokens() >= u64::from(ai.max_tokens_per_conversation);
        if spent {
            conversation.handoff_reason = Some("AI limits reached".into());
            let told = ai.limit_reached.clone();
            self.send(Outbound::text(told));
            return self.enqueue(HandoffReason::Ai);
        }
        conversation.push(Role::User, &question, ai.history_messages as usize);
        self.effects.push(Effect::AskAi);
    }

    pub(super) fn ai_answered(&mut self, answer: &Answer) {
        let keep = self.tenant.ai.history_messages as usize;
        let conversation = self.session.ai.get_or_insert_default();
        conversation.usage.add(answer.usage);
        match &answer.outcome {
            AiOutcome::Reply { text } => {
                conversation.answers += 1;
                conversation.push(Role::Assistant, text, keep);
                self.session.attempts = 0;
                self.send(Outbound::text(text));
            }
            AiOutcome::Handoff { reason, department } => {
                self.ai_handoff(reason.clone(), department.clone());
            }
            AiOutcome::Failed { error, .. } => {
                conversation.handoff_reason = Some(format!("AI error: {error}"));
                self.send(Outbound::text(&self.tenant.texts.ai_unavailable));
                self.enqueue(HandoffReason::Ai);
            }
        }
    }

    pub(super) fn ai_handoff(&mut self, reason: String, department: Option<String>) {
        self.session.ai.get_or_insert_default().handoff_reason = Some(reason);
        if department.is_some() {
            self.session.department = department;
        }
        self.send(Outbound::text(&self.tenant.texts.handoff));
        self.enqueue(HandoffReason::Ai);
    }
}
