//! Time-driven turns: off-hours replies, SLA warnings and breaches, the opening follow-up.

use super::*;

impl Turn<'_> {
    /// One reply per closed period; the conversation waits for the opening follow-up.
    pub(super) fn off_hours(&mut self, escalates: bool) {
        self.session.awaiting_opening = true;
        self.session.wants_human |= escalates;
        let notified = self
            .session
            .off_hours_until
            .is_some_and(|until| until > self.now);
        if !notified {
            self.session.off_hours_until = hours::next_opening(self.tenant, self.now);
            self.send(Outbound::text(&self.tenant.texts.off_hours));
            if let Some(until) = self.session.off_hours_until {
                self.effects.push(Effect::AwaitOpening { until });
            }
        }
    }

    pub(super) fn timer(&mut self, timer: &Timer) {
        match timer {
            Timer::SlaWarning {
                entered_at,
                waited_minutes,
            } => self.sla(SlaLevel::Warning, *entered_at, *waited_minutes),
            Timer::SlaBreach {
                entered_at,
                waited_minutes,
            } => self.sla(SlaLevel::Breach, *entered_at, *waited_minutes),
            Timer::QueuePosition { entered_at, .. } => {
                if let Some(ticket) = self.waiting_since(*entered_at)
                    && self.tenant.desk.position.is_some()
                {
                    self.effects.push(Effect::TellPosition { ticket });
                }
            }
            Timer::Opening { until } => self.opening(*until),
        }
    }

    /// The ticket, when the customer still waits from `entered_at` (not taken, not left).
    pub(super) fn waiting_since(&self, entered_at: DateTime<Utc>) -> Option<Ticket> {
        self.session
            .ticket
            .clone()
            .filter(|ticket| ticket.entered_at == entered_at)
    }

    /// Each threshold alerts once per wait; a breach also moves the customer up a priority.
    pub(super) fn sla(&mut self, level: SlaLevel, entered_at: DateTime<Utc>, waited_minutes: i64) {
        let Some(ticket) = self.waiting_since(entered_at) else {
            return;
        };
        if ticket.alerted.is_some_and(|done| done >= level) {
            return;
        }
        let mut alerted = Ticket {
            alerted: Some(level),
            ..ticket.clone()
        };
        if level == SlaLevel::Breach {
            alerted.priority = ticket.priority.raised();
        }
        // The queue first (later sweeps skip it), the alerts last.
        let alert = Effect::AlertSupervisors {
            level,
            ticket: alerted.clone(),
            waited_minutes,
            customer_name: self.session.profile_name.clone(),
        };
        if alerted.priority == ticket.priority {
            self.effects.push(Effect::MarkAlerted {
                ticket: alerted.clone(),
            });
        } else {
            self.effects.push(Effect::LeaveQueue {
                ticket,
                taken_at: None,
            });
            self.effects.push(Effect::EnqueueHuman {
                ticket: alerted.clone(),
            });
            if self.tenant.desk.position.is_some() && self.session.in_service_window(self.now) {
                self.effects.push(Effect::TellPosition {
                    ticket: alerted.clone(),
                });
            }
        }
        self.effects.push(alert);
        self.session.ticket = Some(alerted);
    }

    /// The tenant opened: who asked for a person goes straight to the queue, everyone else
    /// gets the menu. Outside the 24 h window, the approved template comes first and the
    /// customer's reply carries on from there.
    pub(super) fn opening(&mut self, until: DateTime<Utc>) {
        if !self.session.awaiting_opening {
            // Followed up already, or the customer came back by itself: off the list.
            return self.effects.push(Effect::OpeningDone);
        }
        if self.session.off_hours_until != Some(until) {
            return; // a timer for an earlier closed period; the list holds the later one
        }
        self.session.awaiting_opening = false;
        // The conversation resumes now: the reply to this follow-up is not a new session.
        self.session.last_activity_at = self.now;
        self.effects.push(Effect::OpeningDone);
        let in_window = self.session.in_service_window(self.now);
        if !in_window {
            let body = self.tenant.menu.body.clone();
            self.send_or_template(
                &body,
                self.tenant.templates.off_hours_followup.as_ref(),
                false,
            );
        }
        if std::mem::take(&mut self.session.wants_human) {
            if in_window {
                self.handoff(HandoffReason::Asked);
            } else {
                self.enqueue(HandoffReason::Asked);
            }
        } else if in_window {
            self.show_menu(self.tenant.menu.body.clone());
        } else {
            self.session.state = State::Menu;
            self.session.attempts = 0;
        }
    }
}
