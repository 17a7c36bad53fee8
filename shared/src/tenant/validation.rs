//! A tenant file's rules: WhatsApp's limits and every reference resolving, each failure
//! naming its field and rule.

use super::*;

impl Tenant {
    /// Consistency and WhatsApp's limits, with the field and the rule broken.
    pub fn validate(&self) -> Result<(), LimitError> {
        let fail = |field: &str, rule: String| {
            Err(LimitError {
                field: field.into(),
                rule,
            })
        };
        for (field, value) in [
            ("phone_number_id", &self.phone_number_id),
            ("waba_id", &self.waba_id),
        ] {
            if value.is_empty() || !value.bytes().all(|b| b.is_ascii_digit()) {
                return fail(field, "must be Meta's numeric id".into());
            }
        }
        check_text("name", &self.name, 120)?;
        if self.max_bot_attempts == 0 {
            return fail("max_bot_attempts", "must be at least 1".into());
        }
        if self.session_timeout_minutes == 0 {
            return fail("session_timeout_minutes", "must be at least 1".into());
        }
        if self.retention_days < MIN_RETENTION_DAYS {
            // A message's record holds its text and keeps Meta's retries (up to 7 days) out.
            return fail(
                "retention_days",
                format!(
                    "must be at least {MIN_RETENTION_DAYS} (Meta retries a message for up to 7 days)"
                ),
            );
        }
        for (field, text) in [
            ("texts.greeting", &self.texts.greeting),
            ("texts.not_understood", &self.texts.not_understood),
            ("texts.off_hours", &self.texts.off_hours),
            ("texts.handoff", &self.texts.handoff),
            ("texts.ai_unavailable", &self.texts.ai_unavailable),
            ("nps.question", &self.nps.question),
            ("nps.thanks", &self.nps.thanks),
            ("nps.goodbye", &self.nps.goodbye),
        ] {
            check_text(field, text, limits::TEXT_BODY)?;
        }
        if let Some(hours) = &self.business_hours {
            for (day, intervals) in hours.days() {
                for (i, interval) in intervals.iter().enumerate() {
                    if interval.open >= interval.close {
                        return fail(
                            &format!("business_hours.{day}[{i}]"),
                            "open must be before close".into(),
                        );
                    }
                }
            }
        }

        if self.departments.is_empty() {
            return fail("departments", "at least one department is required".into());
        }
        unique(
            "departments",
            self.departments.iter().map(|d| d.id.as_str()),
        )?;
        for (d, department) in self.departments.iter().enumerate() {
            let at = format!("departments[{d}]");
            check_text(&format!("{at}.name"), &department.name, 60)?;
            if department.sla.alert_after_minutes > department.sla.max_wait_minutes {
                return fail(
                    &format!("{at}.sla"),
                    "alert_after_minutes must not exceed max_wait_minutes".into(),
                );
            }
            unique(
                &format!("{at}.flow"),
                department.flow.iter().map(|s| s.id.as_str()),
            )?;
            for (s, step) in department.flow.iter().enumerate() {
                let at = format!("{at}.flow[{s}]");
                self.step_message(step, step.prompt.clone())
                    .validate()
                    .map_err(|e| LimitError {
                        field: format!("{at}.{}", e.field),
                        rule: e.rule,
                    })?;
                if step.choices.is_empty() && step.next.is_none() {
                    return fail(
                        &format!("{at}.next"),
                        "a step without choices needs `next`".into(),
                    );
                }
                for (c, choice) in step.choices.iter().enumerate() {
                    self.check_target(
                        &format!("{at}.choices[{c}].next"),
                        &choice.next,
                        Some(department),
                    )?;
                }
                if let Some(next) = &step.next {
                    self.check_target(&format!("{at}.next"), next, Some(department))?;
                }
            }
        }

        if self.menu.options.is_empty() {
            return fail("menu.options", "at least one option is required".into());
        }
        self.menu_message(self.menu.body.clone())
            .validate()
            .map_err(|e| LimitError {
                field: format!("menu.{}", e.field),
                rule: e.rule,
            })?;
        for (o, option) in self.menu.options.iter().enumerate() {
            self.check_target(&format!("menu.options[{o}].target"), &option.target, None)?;
        }
        if self
            .escalation_words
            .iter()
            .any(|w| normalize(w).is_empty())
        {
            return fail("escalation_words", "words must not be empty".into());
        }
        self.validate_ai()?;
        self.validate_campaigns()?;
        self.validate_desk()
    }

    fn validate_campaigns(&self) -> Result<(), LimitError> {
        let fail = |field: &str, rule: &str| {
            Err(LimitError {
                field: format!("campaigns.{field}"),
                rule: rule.into(),
            })
        };
        let settings = &self.campaigns;
        if !(1..=1000).contains(&settings.throughput_per_second) {
            return fail(
                "throughput_per_second",
                "between 1 and 1000 messages per second (Meta's range)",
            );
        }
        if settings
            .portfolio_id
            .as_deref()
            .is_some_and(|id| id.is_empty() || !id.bytes().all(|b| b.is_ascii_digit()))
        {
            return fail("portfolio_id", "the portfolio's id, digits only");
        }
        for (field, words) in [
            ("opt_out_words", &settings.opt_out_words),
            ("opt_in_words", &settings.opt_in_words),
        ] {
            if words.is_empty() || words.iter().any(|w| normalize(w).is_empty()) {
                return fail(field, "at least one word, none empty");
            }
        }
        let opt_out: Vec<String> = settings
            .opt_out_words
            .iter()
            .map(|w| normalize(w))
            .collect();
        if let Some(both) = settings
            .opt_in_words
            .iter()
            .find(|w| opt_out.contains(&normalize(w)))
        {
            return fail("opt_in_words", &format!("{both:?} is also an opt-out word"));
        }
        for (field, text) in [
            ("opt_out_reply", &settings.opt_out_reply),
            ("opt_in_reply", &settings.opt_in_reply),
        ] {
            if text.trim().is_empty() || text.chars().count() > 4096 {
                return fail(field, "a text of 1 to 4096 characters");
            }
        }
        if !(settings.failure_pause_threshold > 0.0 && settings.failure_pause_threshold <= 1.0) {
            return fail("failure_pause_threshold", "a share above 0 and at most 1");
        }
        Ok(())
    }

    fn validate_desk(&self) -> Result<(), LimitError> {
        let fail = |field: &str, rule: &str| {
            Err(LimitError {
                field: format!("desk.{field}"),
                rule: rule.into(),
            })
        };
        let desk = &self.desk;
        if let Some(chatwoot) = &desk.chatwoot {
            // The access token travels with every call: plain HTTP only on loopback.
            if !https_or_loopback(&chatwoot.base_url) {
                return fail(
                    "chatwoot.base_url",
                    "must be an https URL without user info (http only for 127.0.0.1 or localhost)",
                );
            }
            if chatwoot.account_id == 0 || chatwoot.inbox_id == 0 {
                return fail(
                    "chatwoot",
                    "account_id and inbox_id must be Chatwoot's ids (> 0)",
                );
            }
        }
        for (field, numbers) in [
            ("vip_contacts", &desk.vip_contacts),
            ("supervisors", &desk.supervisors),
        ] {
            for (i, contact) in numbers.iter().enumerate() {
                if contact.is_empty()
                    || !contact
                        .bytes()
                        .all(|b| b.is_ascii_alphanumeric() || b == b'.')
                {
                    return fail(
                        &format!("{field}[{i}]"),
                        "must be a WhatsApp id as Meta sends it (digits, no + or spaces)",
                    );
                }
            }
        }
        if !desk.supervisors.is_empty() && self.templates.sla_alert.is_none() {
            return Err(LimitError {
                field: "templates.sla_alert".into(),
                rule: "is required when desk.supervisors are set (alerts go out as a template)"
                    .into(),
            });
        }
        if desk.give_up_words.iter().any(|w| normalize(w).is_empty()) {
            return fail("give_up_words", "words must not be empty");
        }
        for (field, text, needs) in [
            ("position", &desk.position, Some("{position}")),
            (
                "position_no_estimate",
                &desk.position_no_estimate,
                Some("{position}"),
            ),
            ("left_queue", &desk.left_queue, None),
            ("assigned", &desk.assigned, None),
        ] {
            let Some(text) = text else { continue };
            check_text(&format!("desk.{field}"), text, limits::TEXT_BODY)?;
            if let Some(placeholder) = needs
                && !text.contains(placeholder)
            {
                return fail(field, &format!("must contain {placeholder}"));
            }
        }
        if desk.position.is_some() != desk.position_no_estimate.is_some() {
            return fail(
                "position_no_estimate",
                "position and position_no_estimate go together",
            );
        }
        if desk
            .position
            .as_ref()
            .is_some_and(|t| !t.contains("{minutes}"))
        {
            return fail("position", "must contain {minutes}");
        }
        if !desk.give_up_words.is_empty() && desk.left_queue.is_none() {
            return fail("left_queue", "is required when give_up_words are set");
        }
        Ok(())
    }

    fn validate_ai(&self) -> Result<(), LimitError> {
        let fail = |field: &str, rule: &str| {
            Err(LimitError {
                field: format!("ai.{field}"),
                rule: rule.into(),
            })
        };
        let ai = &self.ai;
        if self.features.ai_enabled {
            for (field, value) in [
                ("model", &ai.model),
                ("system_prompt", &ai.system_prompt),
                ("greeting", &ai.greeting),
            ] {
                if value.as_deref().is_none_or(|v| v.trim().is_empty()) {
                    return fail(field, "is required when features.ai_enabled is true");
                }
            }
        }
        for (field, text) in [
            ("greeting", ai.greeting.as_ref()),
            ("media_reply", ai.media_reply.as_ref()),
            ("limit_reached", Some(&ai.limit_reached)),
        ] {
            if let Some(text) = text {
                check_text(&format!("ai.{field}"), text, limits::TEXT_BODY)?;
            }
        }
        for (field, value, min, max) in [
            ("max_turns", ai.max_turns, 1, 100),
            ("max_tokens", ai.max_tokens, 16, 4096),
            (
                "max_tokens_per_conversation",
                ai.max_tokens_per_conversation,
                100,
                1_000_000,
            ),
            ("history_messages", ai.history_messages, 1, 50),
        ] {
            if !(min..=max).contains(&value) {
                return fail(field, &format!("must be between {min} and {max}"));
            }
        }
        if ai.faq_enabled && ai.faq.is_empty() {
            return fail("faq", "faq_enabled needs at least one entry");
        }
        let mut ids = HashSet::new();
        for (i, entry) in ai.faq.iter().enumerate() {
            let field = |name: &str| format!("faq[{i}].{name}");
            if entry.id.is_empty()
                || !entry
                    .id
                    .bytes()
                    .all(|b| b.is_ascii_lowercase() || b.is_ascii_digit() || b == b'_')
            {
                return fail(&field("id"), "must be lower case letters, digits and _");
            }
            if !ids.insert(entry.id.as_str()) {
                return fail(&field("id"), &format!("`{}` is used twice", entry.id));
            }
            check_text(&format!("ai.{}", field("topic")), &entry.topic, 200)?;
            check_text(&format!("ai.{}", field("answer")), &entry.answer, 2000)?;
        }
        Ok(())
    }

    fn check_target(
        &self,
        field: &str,
        target: &Target,
        department: Option<&Department>,
    ) -> Result<(), LimitError> {
        let fail = |rule: String| {
            Err(LimitError {
                field: field.into(),
                rule,
            })
        };
        match target {
            Target::Department(id) if self.department(id).is_none() => {
                fail(format!("department `{id}` does not exist"))
            }
            Target::Step(id) => match department {
                None => fail("`step` targets exist only inside a department's flow".into()),
                Some(d) if !d.flow.iter().any(|s| &s.id == id) => fail(format!(
                    "step `{id}` does not exist in department `{}`",
                    d.id
                )),
                Some(_) => Ok(()),
            },
            Target::Human if department.is_none() => {
                fail("`human` needs a department; use `department: <id>`".into())
            }
            Target::Ai if !self.features.ai_enabled => {
                fail("`ai` needs features.ai_enabled (contract-gated)".into())
            }
            _ => Ok(()),
        }
    }
}

fn unique<'a>(field: &str, ids: impl Iterator<Item = &'a str>) -> Result<(), LimitError> {
    let mut seen = HashSet::new();
    for id in ids {
        if id.trim().is_empty() {
            return Err(LimitError {
                field: field.into(),
                rule: "ids must not be empty".into(),
            });
        }
        if !seen.insert(id) {
            return Err(LimitError {
                field: field.into(),
                rule: format!("ids must be unique (`{id}` repeats)"),
            });
        }
    }
    Ok(())
}

/// `https://host[:port]...`, or `http://` to 127.0.0.1, localhost or [::1] (the local
/// stack). User info is refused: it makes the text before `@` look like the host.
fn https_or_loopback(url: &str) -> bool {
    if url.chars().any(|c| c.is_whitespace() || c.is_control()) {
        return false;
    }
    let (secure, rest) = match url.split_once("://") {
        Some(("https", rest)) => (true, rest),
        Some(("http", rest)) => (false, rest),
        _ => return false,
    };
    let authority = rest.split(['/', '\\', '?', '#']).next().unwrap_or_default();
    let (host, port) = match authority.rsplit_once(':') {
        // A bare IPv6 address: its colons are not a port.
        Some((host, _)) if !host.ends_with(']') && host.contains(':') => (authority, ""),
        Some((host, port)) => (host, port),
        None => (authority, ""),
    };
    let port_ok = port.is_empty() || port.bytes().all(|b| b.is_ascii_digit());
    if host.is_empty() || authority.contains('@') || !port_ok {
        return false;
    }
    secure || matches!(host, "127.0.0.1" | "localhost" | "[::1]")
}
