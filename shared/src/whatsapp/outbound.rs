//! What the business sends a customer, as the domain sees it, and WhatsApp's limits on it.
//! The engine produces these; the Cloud API sender turns them into Graph API requests and
//! refuses, before sending, any that breaks a limit.

use serde::{Deserialize, Serialize};
use thiserror::Error;

/// WhatsApp Cloud API limits (characters, counted as Unicode scalar values).
pub mod limits {
    pub const TEXT_BODY: usize = 4096;
    pub const INTERACTIVE_BODY_BUTTONS: usize = 1024;
    pub const INTERACTIVE_BODY_LIST: usize = 4096;
    pub const HEADER_TEXT: usize = 60;
    pub const FOOTER_TEXT: usize = 60;
    pub const MAX_BUTTONS: usize = 3;
    pub const BUTTON_TITLE: usize = 20;
    pub const BUTTON_ID: usize = 256;
    pub const LIST_BUTTON_LABEL: usize = 20;
    pub const MAX_SECTIONS: usize = 10;
    pub const MAX_ROWS: usize = 10;
    pub const SECTION_TITLE: usize = 24;
    pub const ROW_TITLE: usize = 24;
    pub const ROW_DESCRIPTION: usize = 72;
    pub const ROW_ID: usize = 200;
    pub const FLOW_CTA: usize = 20;
}

#[derive(Debug, Clone, PartialEq, Eq, Serialize, Deserialize)]
#[serde(rename_all = "snake_case")]
pub enum Outbound {
    Text {
        body: String,
        #[serde(default)]
        preview_url: bool,
    },
    Buttons {
        body: String,
        #[serde(default, skip_serializing_if = "Option::is_none")]
        header: Option<String>,
        #[serde(default, skip_serializing_if = "Option::is_none")]
        footer: Option<String>,
        buttons: Vec<Choice>,
    },
    List {
        body: String,
        #[serde(default, skip_serializing_if = "Option::is_none")]
        header: Option<String>,
        #[serde(default, skip_serializing_if = "Option::is_none")]
        footer: Option<String>,
        /// The label of the button that opens the list.
        button: String,
        sections: Vec<Section>,
    },
    Template {
        name: String,
        language: String,
        #[serde(default, skip_serializing_if = "Vec::is_empty")]
        components: Vec<TemplateComponent>,
    },
    /// A template whose components are the Graph API's own JSON, sent as given: what the
    /// platform API's callers send (media headers, currency and date parameters, ...),
    /// beyond the text parameters of [`Outbound::Template`].
    GraphTemplate {
        name: String,
        language: String,
        #[serde(default, skip_serializing_if = "Vec::is_empty")]
        components: Vec<serde_json::Value>,
    },
    Flow {
        body: String,
        #[serde(default, skip_serializing_if = "Option::is_none")]
        header: Option<String>,
        #[serde(default, skip_serializing_if = "Option::is_none")]
        footer: Option<String>,
        flow_id: String,
        /// The label of the button that opens the flow.
        cta: String,
        flow_token: String,
        #[serde(default, skip_serializing_if = "Option::is_none")]
        screen: Option<String>,
    },
    /// An image, audio, video or document Meta fetches from `link` (an agent's attachment).
    Media {
        /// image, audio, video or document.
        kind: String,
        link: String,
        #[serde(default, skip_serializing_if = "Option::is_none")]
        filename: Option<String>,
    },
}

/// A reply button or a list row.
#[derive(Debug, Clone, PartialEq, Eq, Serialize, Deserialize)]
pub struct Choice {
    pub id: String,
    pub title: String,
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub description: Option<String>,
}

#[derive(Debug, Clone, PartialEq, Eq, Serialize, Deserialize)]
pub struct Section {
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub title: Option<String>,
    pub rows: Vec<Choice>,
}

/// A template component with its text parameters, in the Graph API's terms:
/// `kind` is header, body or button; buttons carry `sub_type` and `index`.
#[derive(Debug, Clone, PartialEq, Eq, Serialize, Deserialize)]
pub struct TemplateComponent {
    pub kind: String,
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub sub_type: Option<String>,
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub index: Option<u8>,
    #[serde(default)]
    pub parameters: Vec<String>,
}

/// A limit a message breaks: which field, what the rule is.
#[derive(Debug, Clone, PartialEq, Eq, Error)]
#[error("{field}: {rule}")]
pub struct LimitError {
    pub field: String,
    pub rule: String,
}

/// Checks `value` is non-empty and at most `max` characters long.
pub fn check_text(field: &str, value: &str, max: usize) -> Result<(), LimitError> {
    let length = value.chars().count();
    if value.trim().is_empty() {
        Err(LimitError {
            field: field.into(),
            rule: "must not be empty".into(),
        })
    } else if length > max {
        Err(LimitError {
            field: field.into(),
            rule: format!("at most {max} characters (has {length})"),
        })
    } else {
        Ok(())
    }
}

fn check_optional(field: &str, value: &Option<String>, max: usize) -> Result<(), LimitError> {
    value
        .as_deref()
        .map_or(Ok(()), |v| check_text(field, v, max))
}

fn check_count(field: &str, count: usize, max: usize) -> Result<(), LimitError> {
    if count == 0 || count > max {
        Err(LimitError {
            field: field.into(),
            rule: format!("between 1 and {max} items (has {count})"),
        })
    } else {
        Ok(())
    }
}

impl Outbound {
    pub fn text(body: impl Into<String>) -> Self {
        Outbound::Text {
            body: body.into(),
            preview_url: false,
        }
    }

    /// The kind, as logs and the message log name it.
    pub fn kind(&self) -> &'static str {
        match self {
            Outbound::Text { .. } => "text",
            Outbound::Buttons { .. } => "buttons",
            Outbound::List { .. } => "list",
            Outbound::Template { .. } | Outbound::GraphTemplate { .. } => "template",
            Outbound::Flow { .. } => "flow",
            Outbound::Media { .. } => "media",
        }
    }

    /// What the transcript shows of it: the body, or the kind of what has none.
    pub fn transcript_text(&self) -> String {
        match self {
            Outbound::Text { body, .. }
            | Outbound::Buttons { body, .. }
            | Outbound::List { body, .. }
            | Outbound::Flow { body, .. } => body.clone(),
            Outbound::Media { kind, .. } => format!("[{kind}]"),
            Outbound::Template { name, .. } | Outbound::GraphTemplate { name, .. } => {
                format!("template {name}")
            }
        }
    }

    /// Every WhatsApp limit this message must respect, checked before sending.
    pub fn validate(&self) -> Result<(), LimitError> {
        use limits::*;
        match self {
            Outbound::Text { body, .. } => check_text("text.body", body, TEXT_BODY),
            Outbound::Buttons {
                body,
                header,
                footer,
                buttons,
            } => {
                check_text("body", body, INTERACTIVE_BODY_BUTTONS)?;
                check_optional("header", header, HEADER_TEXT)?;
                check_optional("footer", footer, FOOTER_TEXT)?;
                check_count("buttons", buttons.len(), MAX_BUTTONS)?;
                for (i, button) in buttons.iter().enumerate() {
                    check_text(&format!("buttons[{i}].title"), &button.title, BUTTON_TITLE)?;
                    check_text(&format!("buttons[{i}].id"), &button.id, BUTTON_ID)?;
                }
                unique_ids("buttons", buttons.iter())
            }
            Outbound::List {
                body,
                header,
                footer,
                button,
                sections,
            } => {
                check_text("body", body, INTERACTIVE_BODY_LIST)?;
                check_optional("header", header, HEADER_TEXT)?;
                check_optional("footer", footer, FOOTER_TEXT)?;
                check_text("button", button, LIST_BUTTON_LABEL)?;
                check_count("sections", sections.len(), MAX_SECTIONS)?;
                let rows: usize = sections.iter().map(|s| s.rows.len()).sum();
                check_count("sections[].rows", rows, MAX_ROWS)?;
                for (s, section) in sections.iter().enumerate() {
                    if sections.len() > 1 && section.title.is_none() {
                        return Err(LimitError {
                            field: format!("sections[{s}].title"),
                            rule: "required when a list has more than one section".into(),
                        });
                    }
                    check_optional(
                        &format!("sections[{s}].title"),
                        &section.title,
                        SECTION_TITLE,
                    )?;
                    for (r, row) in section.rows.iter().enumerate() {
                        let at = format!("sections[{s}].rows[{r}]");
                        check_text(&format!("{at}.title"), &row.title, ROW_TITLE)?;
                        check_text(&format!("{at}.id"), &row.id, ROW_ID)?;
                        check_optional(
                            &format!("{at}.description"),
                            &row.description,
                            ROW_DESCRIPTION,
                        )?;
                    }
                }
                unique_ids("sections[].rows", sections.iter().flat_map(|s| &s.rows))
            }
            Outbound::Template { name, language, .. }
            | Outbound::GraphTemplate { name, language, .. } => {
                check_text("template.name", name, 512)?;
                check_text("template.language", language, 15)
            }
            Outbound::Flow {
                body,
                header,
                footer,
                flow_id,
                cta,
                flow_token,
                ..
            } => {
                check_text("body", body, INTERACTIVE_BODY_LIST)?;
                check_optional("header", header, HEADER_TEXT)?;
                check_optional("footer", footer, FOOTER_TEXT)?;
                check_text("flow_id", flow_id, 64)?;
                check_text("cta", cta, FLOW_CTA)?;
                check_text("flow_token", flow_token, 512)
            }
            Outbound::Media { kind, link, .. } => {
                if !matches!(kind.as_str(), "image" | "audio" | "video" | "document") {
                    return Err(LimitError {
                        field: "media.kind".into(),
                        rule: "must be image, audio, video or document".into(),
                    });
                }
                // Meta fetches the file from the link: over plain http anyone on the way
                // could read or swap it.
                if !link.starts_with("https://") || link.len() <= "https://".len() {
                    return Err(LimitError {
                        field: "media.link".into(),
                        rule: "must be an https URL".into(),
                    });
                }
                Ok(())
            }
        }
    }
}

fn unique_ids<'a>(
    field: &str,
    choices: impl Iterator<Item = &'a Choice>,
) -> Result<(), LimitError> {
    let mut seen = std::collections::HashSet::new();
    for choice in choices {
        if !seen.insert(choice.id.as_str()) {
            return Err(LimitError {
                field: field.into(),
                rule: format!("ids must be unique (`{}` repeats)", choice.id),
            });
        }
    }
    Ok(())
}

#[cfg(test)]
mod tests {
    use super::*;

    fn choice(id: &str, title: &str) -> Choice {
        Choice {
            id: id.into(),
            title: title.into(),
            description: None,
        }
    }

    #[test]
    fn buttons_within_limits_pass_and_each_limit_is_named() {
        let ok = Outbound::Buttons {
            body: "Como podemos ajudar?".into(),
            header: None,
            footer: None,
            buttons: vec![choice("suporte", "Suporte"), choice("vendas", "Vendas")],
        };
        assert_eq!(ok.validate(), Ok(()));

        let four = Outbound::Buttons {
            body: "x".into(),
            header: None,
            footer: None,
            buttons: (0..4).map(|i| choice(&i.to_string(), "t")).collect(),
        };
        assert_eq!(four.validate().unwrap_err().field, "buttons");

        let long = Outbound::Buttons {
            body: "x".into(),
            header: None,
            footer: None,
            buttons: vec![choice("a", "Um título longo demais!")],
        };
        let error = long.validate().unwrap_err();
        assert_eq!(error.field, "buttons[0].title");
        assert_eq!(error.rule, "at most 20 characters (has 23)");
    }

    #[test]
    fn lists_count_rows_across_sections_and_need_titles_when_sectioned() {
        let rows = |n: usize, prefix: &str| {
            (0..n)
                .map(|i| choice(&format!("{prefix}{i}"), "Opção"))
                .collect()
        };
        let list = |sections| Outbound::List {
            body: "Escolha".into(),
            header: None,
            footer: None,
            button: "Ver opções".into(),
            sections,
        };
        let eleven = list(vec![
            Section {
                title: Some("A".into()),
                rows: rows(6, "a"),
            },
            Section {
                title: Some("B".into()),
                rows: rows(5, "b"),
            },
        ]);
        assert_eq!(eleven.validate().unwrap_err().field, "sections[].rows");
        let untitled = list(vec![
            Section {
                title: None,
                rows: rows(2, "a"),
            },
            Section {
                title: Some("B".into()),
                rows: rows(2, "b"),
            },
        ]);
        assert_eq!(untitled.validate().unwrap_err().field, "sections[0].title");
        let duplicate = list(vec![Section {
            title: None,
            rows: vec![choice("x", "Um"), choice("x", "Dois")],
        }]);
        assert!(duplicate.validate().unwrap_err().rule.contains("unique"));
    }

    #[test]
    fn media_goes_only_by_https_link() {
        let media = |link: &str| Outbound::Media {
            kind: "document".into(),
            link: link.into(),
            filename: None,
        };
        assert_eq!(media("https://desk.example/files/a.pdf").validate(), Ok(()));
        for link in [
            "http://desk.example/files/a.pdf",
            "https://",
            "desk.example/a.pdf",
        ] {
            let error = media(link).validate().unwrap_err();
            assert_eq!(
                (error.field.as_str(), error.rule.as_str()),
                ("media.link", "must be an https URL"),
                "{link}"
            );
        }
    }

    #[test]
    fn characters_not_bytes_are_counted() {
        assert_eq!(check_text("t", &"ç".repeat(20), 20), Ok(()));
        assert!(check_text("t", "   ", 20).is_err());
    }
}
