//! The tenant's menu and flow steps as WhatsApp messages: buttons up to three choices,
//! a sectioned list beyond.

use super::*;

impl Tenant {
    /// The main menu as WhatsApp will show it: reply buttons for up to 3 options, a list
    /// (sectioned by each option's `section`) beyond that.
    pub fn menu_message(&self, body: String) -> Outbound {
        let menu = &self.menu;
        if menu.options.len() <= limits::MAX_BUTTONS {
            return Outbound::Buttons {
                body,
                header: menu.header.clone(),
                footer: menu.footer.clone(),
                buttons: menu
                    .options
                    .iter()
                    .map(|o| choice(&o.id, &o.title, None))
                    .collect(),
            };
        }
        let mut sections: Vec<Section> = Vec::new();
        for option in &menu.options {
            let row = choice(&option.id, &option.title, option.description.as_deref());
            match sections.iter_mut().find(|s| s.title == option.section) {
                Some(section) => section.rows.push(row),
                None => sections.push(Section {
                    title: option.section.clone(),
                    rows: vec![row],
                }),
            }
        }
        Outbound::List {
            body,
            header: menu.header.clone(),
            footer: menu.footer.clone(),
            button: menu.button.clone(),
            sections,
        }
    }

    /// A flow step as WhatsApp will show it.
    pub fn step_message(&self, step: &Step, body: String) -> Outbound {
        let choices: Vec<Choice> = step
            .choices
            .iter()
            .map(|c| choice(&c.id, &c.title, c.description.as_deref()))
            .collect();
        match choices.len() {
            0 => Outbound::text(body),
            1..=3 if choices.iter().all(|c| c.description.is_none()) => Outbound::Buttons {
                body,
                header: None,
                footer: None,
                buttons: choices,
            },
            _ => Outbound::List {
                body,
                header: None,
                footer: None,
                button: self.menu.button.clone(),
                sections: vec![Section {
                    title: None,
                    rows: choices,
                }],
            },
        }
    }
}

fn choice(id: &str, title: &str, description: Option<&str>) -> Choice {
    outbound::Choice {
        id: id.into(),
        title: title.into(),
        description: description.map(str::to_owned),
    }
}
