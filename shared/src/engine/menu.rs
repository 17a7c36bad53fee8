//! The greeting, the main menu and the departments' flows.

use super::*;

impl Turn<'_> {
    pub(super) fn greet(&mut self, profile_name: Option<&str>) {
        let name = profile_name
            .map(|n| format!(", {}", n.trim()))
            .filter(|n| n.len() > 2)
            .unwrap_or_default();
        self.send(Outbound::text(
            self.tenant.texts.greeting.replace("{name}", &name),
        ));
        self.show_menu(self.tenant.menu.body.clone());
    }

    pub(super) fn show_menu(&mut self, body: String) {
        self.session.state = State::Menu;
        self.session.attempts = 0;
        self.send(self.tenant.menu_message(body));
    }

    pub(super) fn answer_menu(&mut self, input: &Input) {
        let options = &self.tenant.menu.options;
        let choices: Vec<_> = options
            .iter()
            .map(|o| (o.id.as_str(), o.title.as_str()))
            .collect();
        match pick(&choices, input) {
            Some(index) => self.go(&options[index].target.clone()),
            // A question instead of a choice: the attendant answers it.
            None if self.tenant.features.ai_enabled && matches!(input, Input::Text(_)) => {
                self.session.state = State::Ai;
                self.answer_ai(input);
            }
            None => self.not_understood(|turn| {
                let body = turn.tenant.texts.not_understood.clone();
                turn.send(turn.tenant.menu_message(body));
            }),
        }
    }

    pub(super) fn answer_step(&mut self, department: &str, step_id: &str, input: &Input) {
        let Some(step) = self.find_step(department, step_id) else {
            // The tenant's flow changed under this conversation: start again from the menu.
            self.show_menu(self.tenant.menu.body.clone());
            return;
        };
        if step.choices.is_empty() {
            let Input::Text(text) = input else {
                return self.not_understood(|turn| {
                    turn.ask(&step, turn.tenant.texts.not_understood.clone())
                });
            };
            let answer = truncate_chars(text, MAX_ANSWER_CHARS).to_owned();
            self.session.answers.insert(step.id.clone(), answer);
            let next = step.next.clone().unwrap_or(Target::Human);
            return self.go(&next);
        }
        let choices: Vec<_> = step
            .choices
            .iter()
            .map(|c| (c.id.as_str(), c.title.as_str()))
            .collect();
        match pick(&choices, input) {
            Some(index) => {
                let choice = &step.choices[index];
                self.session
                    .answers
                    .insert(step.id.clone(), choice.title.clone());
                if let Some(reply) = &choice.reply {
                    self.send(Outbound::text(reply));
                }
                self.go(&choice.next.clone());
            }
            None => self
                .not_understood(|turn| turn.ask(&step, turn.tenant.texts.not_understood.clone())),
        }
    }

    pub(super) fn find_step(&self, department: &str, step: &str) -> Option<Step> {
        self.tenant
            .department(department)?
            .flow
            .iter()
            .find(|s| s.id == step)
            .cloned()
    }

    pub(super) fn ask(&mut self, step: &Step, body: String) {
        let message = self.tenant.step_message(step, body);
        self.send(message);
    }

    /// A wrong answer: re-prompt, or hand over after `max_bot_attempts` in a row.
    pub(super) fn not_understood(&mut self, reprompt: impl FnOnce(&mut Self)) {
        self.session.attempts += 1;
        self.session.misunderstood += 1;
        if self.session.attempts >= self.tenant.max_bot_attempts {
            self.handoff(HandoffReason::Attempts);
        } else {
            reprompt(self);
        }
    }

    pub(super) fn go(&mut self, target: &Target) {
        self.session.attempts = 0;
        match target {
            Target::Department(id) => {
                self.session.department = Some(id.clone());
                match self
                    .tenant
                    .department(id)
                    .and_then(|d| d.flow.first())
                    .cloned()
                {
                    Some(first) => self.enter_step(id, &first),
                    None => self.handoff(HandoffReason::Asked),
                }
            }
            Target::Step(id) => {
                let department = self.session.department.clone().unwrap_or_default();
                match self.find_step(&department, id) {
                    Some(step) => self.enter_step(&department, &step),
                    None => self.show_menu(self.tenant.menu.body.clone()),
                }
            }
            Target::Human => self.handoff(HandoffReason::Flow),
            Target::Ai if self.tenant.features.ai_enabled => {
                self.session.state = State::Ai;
                let greeting = self.tenant.ai.greeting.clone().unwrap_or_default();
                self.send(Outbound::text(greeting));
            }
            Target::Ai => {
                // The contract does not include the attendant (any more): a person answers.
                self.session.state = State::Ai;
                self.send(Outbound::text(&self.tenant.texts.ai_unavailable));
                self.enqueue(HandoffReason::Ai);
            }
            Target::Menu => self.show_menu(self.tenant.menu.body.clone()),
            Target::Close => self.close(),
        }
    }

    pub(super) fn enter_step(&mut self, department: &str, step: &Step) {
        self.session.state = State::Flow {
            department: department.into(),
            step: step.id.clone(),
        };
        self.ask(step, step.prompt.clone());
    }
}
