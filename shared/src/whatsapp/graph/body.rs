//! The Cloud API's `/messages` request bodies: text, interactive buttons, lists and flows,
//! media and templates with their components.

use super::*;

/// The `/messages` request body for `message` to `to`.
pub(super) fn message_body(to: &str, message: &Outbound) -> Value {
    let (kind, content) = match message {
        Outbound::Text { body, preview_url } => {
            ("text", json!({ "body": body, "preview_url": preview_url }))
        }
        Outbound::Buttons {
            body,
            header,
            footer,
            buttons,
        } => (
            "interactive",
            interactive(
                "button",
                body,
                header,
                footer,
                json!({ "buttons": buttons.iter().map(reply_button).collect::<Vec<_>>() }),
            ),
        ),
        Outbound::List {
            body,
            header,
            footer,
            button,
            sections,
        } => (
            "interactive",
            interactive(
                "list",
                body,
                header,
                footer,
                json!({
                    "button": button,
                    "sections": sections.iter().map(list_section).collect::<Vec<_>>(),
                }),
            ),
        ),
        Outbound::Template {
            name,
            language,
            components,
        } => ("template", template(name, language, components)),
        Outbound::GraphTemplate {
            name,
            language,
            components,
        } => {
            let mut template = json!({ "name": name, "language": { "code": language } });
            if !components.is_empty() {
                template["components"] = json!(components);
            }
            ("template", template)
        }
        Outbound::Flow {
            body,
            header,
            footer,
            flow_id,
            cta,
            flow_token,
            screen,
        } => {
            let mut parameters = json!({
                "flow_message_version": "3",
                "flow_id": flow_id,
                "flow_cta": cta,
                "flow_token": flow_token,
            });
            // A first screen opens the flow directly; without one, the flow's endpoint
            // is asked for it.
            match screen {
                Some(screen) => {
                    parameters["flow_action"] = json!("navigate");
                    parameters["flow_action_payload"] = json!({ "screen": screen });
                }
                None => parameters["flow_action"] = json!("data_exchange"),
            }
            (
                "interactive",
                interactive(
                    "flow",
                    body,
                    header,
                    footer,
                    json!({ "name": "flow", "parameters": parameters }),
                ),
            )
        }
        Outbound::Media {
            kind,
            link,
            filename,
        } => {
            let mut media = json!({ "link": link });
            if let (Some(filename), "document") = (filename, kind.as_str()) {
                media["filename"] = json!(filename);
            }
            // `kind` is one of four fixed words (checked by `validate`).
            let kind: &'static str = match kind.as_str() {
                "image" => "image",
                "audio" => "audio",
                "video" => "video",
                _ => "document",
            };
            (kind, media)
        }
    };
    let mut request = json!({
        "messaging_product": "whatsapp",
        "recipient_type": "individual",
        "to": to,
        "type": kind,
    });
    request[kind] = content;
    request
}

fn interactive(
    kind: &str,
    body: &str,
    header: &Option<String>,
    footer: &Option<String>,
    action: Value,
) -> Value {
    let mut interactive = json!({ "type": kind, "body": { "text": body }, "action": action });
    if let Some(header) = header {
        interactive["header"] = json!({ "type": "text", "text": header });
    }
    if let Some(footer) = footer {
        interactive["footer"] = json!({ "text": footer });
    }
    interactive
}

fn reply_button(choice: &Choice) -> Value {
    json!({ "type": "reply", "reply": { "id": choice.id, "title": choice.title } })
}

fn list_section(section: &Section) -> Value {
    let rows: Vec<Value> = section
        .rows
        .iter()
        .map(|row| {
            let mut value = json!({ "id": row.id, "title": row.title });
            if let Some(description) = &row.description {
                value["description"] = json!(description);
            }
            value
        })
        .collect();
    let mut value = json!({ "rows": rows });
    if let Some(title) = &section.title {
        value["title"] = json!(title);
    }
    value
}

fn template(name: &str, language: &str, components: &[TemplateComponent]) -> Value {
    let mut template = json!({ "name": name, "language": { "code": language } });
    // Components only carry parameters: one without any adds nothing.
    let components: Vec<Value> = components
        .iter()
        .filter(|component| !component.parameters.is_empty())
        .map(template_component)
        .collect();
    if !components.is_empty() {
        template["components"] = json!(components);
    }
    template
}

/// Text parameters for header and body; for buttons, a payload for quick replies, a
/// coupon code for copy-code buttons and the URL suffix (text) for URL buttons.
fn template_component(component: &TemplateComponent) -> Value {
    if component.kind != "button" {
        let parameters: Vec<Value> = component
            .parameters
            .iter()
            .map(|text| json!({ "type": "text", "text": text }))
            .collect();
        return json!({ "type": component.kind, "parameters": parameters });
    }
    let sub_type = component.sub_type.as_deref().unwrap_or("quick_reply");
    let parameters: Vec<Value> = component
        .parameters
        .iter()
        .map(|value| match sub_type {
            "quick_reply" => json!({ "type": "payload", "payload": value }),
            "copy_code" => json!({ "type": "coupon_code", "coupon_code": value }),
            _ => json!({ "type": "text", "text": value }),
        })
        .collect();
    json!({
        "type": "button",
        "sub_type": sub_type,
        "index": component.index.unwrap_or(0).to_string(),
        "parameters": parameters,
    })
}
