//! Handing over to a person: the queue ticket, the desk conversation, the agent's actions.

use super::*;

impl Turn<'_> {
    /// The bot is silent: the customer's messages go to the desk, and a give-up word takes
    /// a waiting customer out of the queue.
    pub(super) fn while_with_a_person(&mut self, input: &Input, media: Option<&MediaRef>) {
        let desk = &self.tenant.desk;
        let text = desk_text(input, media);
        let gives_up = self.session.ticket.is_some()
            && text
                .as_deref()
                .is_some_and(|t| contains_word(&desk.give_up_words, t));
        // Queue and customer first, the desk last: a desk outage must not hold them up.
        let left_queue = gives_up.then(|| self.session.ticket.take()).flatten();
        if let Some(ticket) = left_queue.clone() {
            self.effects.push(Effect::LeaveQueue {
                ticket,
                taken_at: None,
            });
            self.session.state = State::Closed;
            let left = desk.left_queue.clone().unwrap_or_default();
            self.send(Outbound::text(left));
        }
        if desk.chatwoot.is_some() && (text.is_some() || media.is_some()) {
            self.effects.push(Effect::ForwardToDesk {
                text,
                media: media.cloned(),
                private: false,
            });
        }
        if left_queue.is_some() && desk.chatwoot.is_some() {
            self.effects.push(Effect::ForwardToDesk {
                text: Some("O cliente saiu da fila.".into()),
                media: None,
                private: true,
            });
        }
    }

    /// A message too late to answer, or older than one already handled: while a person
    /// has the conversation it still reaches the desk; nothing else happens (no reply, no
    /// give-up word, no change of state).
    pub(super) fn late(&mut self, input: &Input, media: Option<&MediaRef>) {
        if !matches!(self.session.state, State::Human { .. }) || self.tenant.desk.chatwoot.is_none()
        {
            return;
        }
        let text = desk_text(input, media);
        if text.is_some() || media.is_some() {
            self.effects.push(Effect::ForwardToDesk {
                text,
                media: media.cloned(),
                private: false,
            });
        }
    }

    pub(super) fn desk(&mut self, action: &DeskAction) {
        match action {
            DeskAction::AgentReply { text, attachments } => {
                // An agent answering has taken the conversation, assigned or not.
                if let Some(ticket) = self.session.ticket.take() {
                    self.effects.push(Effect::LeaveQueue {
                        ticket,
                        taken_at: Some(self.now),
                    });
                }
                if !matches!(self.session.state, State::Human { .. }) {
                    // An agent wrote (first, or after resolving): the bot must not talk
                    // over them, and the customer's answer goes to the agent.
                    let department = self
                        .session
                        .department
                        .clone()
                        .unwrap_or_else(|| default_department(self.tenant).to_owned());
                    self.session.state = State::Human { department };
                }
                if self.session.in_service_window(self.now) {
                    let text = text.as_deref().unwrap_or_default();
                    // WhatsApp takes up to 4,096 characters per text: longer replies go in parts.
                    let chars: Vec<char> = text.trim().chars().collect();
                    for part in chars.chunks(crate::whatsapp::outbound::limits::TEXT_BODY) {
                        self.send(Outbound::text(part.iter().collect::<String>()));
                    }
                    for attachment in attachments {
                        self.send(Outbound::Media {
                            kind: attachment.kind.clone(),
                            link: attachment.url.clone(),
                            filename: attachment.filename.clone(),
                        });
                    }
                } else {
                    // Outside the window only an approved template reaches the customer.
                    let shown = text.clone().unwrap_or_else(|| {
                        attachments
                            .iter()
                            .filter_map(|a| a.filename.clone())
                            .collect::<Vec<_>>()
                            .join(", ")
                    });
                    self.send_or_template(&shown, self.tenant.templates.agent_reply.as_ref(), true);
                }
            }
            DeskAction::Assigned { agent } => {
                if !matches!(self.session.state, State::Human { .. }) {
                    return;
                }
                if let Some(ticket) = self.session.ticket.take() {
                    self.effects.push(Effect::LeaveQueue {
                        ticket,
                        taken_at: Some(self.now),
                    });
                    if let Some(told) = &self.tenant.desk.assigned {
                        let told = told.replace("{agent}", agent);
                        if self.session.in_service_window(self.now) {
                            self.send(Outbound::text(told));
                        }
                    }
                }
                self.session.agent = Some(agent.clone());
            }
            DeskAction::Resolved => {
                if !matches!(self.session.state, State::Human { .. }) {
                    return;
                }
                // Resolved without being taken: not a take for the wait estimate.
                if let Some(ticket) = self.session.ticket.take() {
                    self.effects.push(Effect::LeaveQueue {
                        ticket,
                        taken_at: None,
                    });
                }
                self.session.agent = None;
                self.close();
            }
        }
    }

    pub(super) fn handoff(&mut self, reason: HandoffReason) {
        self.send(Outbound::text(&self.tenant.texts.handoff));
        self.enqueue(reason);
    }

    /// Into the department's queue (VIP contacts at `alta`), the customer told their place,
    /// and onto the desk with the summary.
    pub(super) fn enqueue(&mut self, reason: HandoffReason) {
        let tenant = self.tenant;
        let department = self
            .session
            .department
            .clone()
            .unwrap_or_else(|| default_department(tenant).to_owned());
        let configured = tenant.department(&department);
        let priority = if tenant.desk.vip_contacts.contains(&self.session.customer) {
            Priority::Alta
        } else {
            configured.map_or_else(Priority::default, |d| d.priority)
        };
        let ticket = Ticket {
            department: department.clone(),
            priority,
            entered_at: self.now,
            reason,
            alerted: None,
        };
        self.session.department = Some(department.clone());
        self.session.state = State::Human { department };
        self.session.attempts = 0;
        self.session.ticket = Some(ticket.clone());
        self.effects.push(Effect::EnqueueHuman {
            ticket: ticket.clone(),
        });
        // Free text only inside the window (a customer queued by the opening follow-up
        // may be outside it).
        if tenant.desk.position.is_some() && self.session.in_service_window(self.now) {
            self.effects.push(Effect::TellPosition {
                ticket: ticket.clone(),
            });
        }
        // The desk last: its outage must not hold up the queue or the customer.
        if tenant.desk.chatwoot.is_some() {
            let handoff = Handoff {
                department: configured
                    .map_or_else(|| ticket.department.clone(), |d| d.name.clone()),
                priority,
                reason,
                answers: self.session.answers.clone().into_iter().collect(),
                ai_reason: self
                    .session
                    .ai
                    .as_ref()
                    .and_then(|ai| ai.handoff_reason.clone()),
                bot_attempts: self.session.misunderstood,
                started_at: self.session.started_at,
                handed_at: self.now,
                ticket_at: ticket.entered_at,
                customer_name: self.session.profile_name.clone(),
            };
            self.effects.push(Effect::OpenDesk { handoff });
        }
    }
}

/// What of a customer's message is posted on the desk as text.
fn desk_text(input: &Input, media: Option<&MediaRef>) -> Option<String> {
    match input {
        Input::Text(text) => Some(text.clone()),
        Input::Choice { title, .. } => Some(title.clone()),
        Input::Media(_) => media.and_then(|m| m.caption.clone()),
        Input::Ignored(_) => None,
    }
}
