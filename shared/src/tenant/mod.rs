//! A tenant: one client company, one WhatsApp Business number. Everything the conversation
//! says and does comes from here, never from code. Operators write it as YAML
//! (`infra/tenants/*.yaml`); the ops CLI validates it and stores it; the worker reads it.

pub mod hours;
mod messages;
mod validation;

use std::collections::HashSet;

use chrono::{NaiveDate, NaiveTime};
use chrono_tz::Tz;
use serde::{Deserialize, Deserializer, Serialize, Serializer};
use thiserror::Error;

use crate::support::text::normalize;

use crate::whatsapp::outbound::{self, Choice, LimitError, Outbound, Section, check_text, limits};

/// The demo tenant (`infra/tenants/demo.yaml`) as configured: the unit tests' fixture.
#[cfg(any(test, feature = "testing"))]
pub fn demo() -> Tenant {
    serde_yaml_ng::from_str(include_str!("../../../infra/tenants/demo.yaml"))
        .expect("the demo tenant parses")
}

/// The demo tenant without business hours: it answers at any time of day.
#[cfg(any(test, feature = "testing"))]
pub fn demo_always_open() -> Tenant {
    Tenant {
        business_hours: None,
        ..demo()
    }
}

/// Customer data is kept at least this long: a message's record, which holds its text,
/// keeps Meta's retries of it (up to 7 days) from being answered twice.
pub const MIN_RETENTION_DAYS: u32 = 8;

#[derive(Debug, Clone, PartialEq, Serialize, Deserialize)]
#[serde(deny_unknown_fields)]
pub struct Tenant {
    pub phone_number_id: String,
    pub waba_id: String,
    pub name: String,
    #[serde(default = "defaults::language")]
    pub language: String,
    #[serde(default = "defaults::timezone")]
    pub timezone: Tz,
    /// Opening hours per weekday; a tenant without them is always open.
    #[serde(default)]
    pub business_hours: Option<BusinessHours>,
    #[serde(default)]
    pub holidays: Vec<NaiveDate>,
    /// Idle time after which a conversation starts over (WhatsApp's service window).
    #[serde(default = "defaults::session_timeout_minutes")]
    pub session_timeout_minutes: u32,
    /// Wrong answers in a row before the bot hands over to a person.
    #[serde(default = "defaults::max_bot_attempts")]
    pub max_bot_attempts: u32,
    /// How long messages are kept per conversation.
    #[serde(default = "defaults::retention_days")]
    pub retention_days: u32,
    pub texts: Texts,
    pub menu: Menu,
    pub departments: Vec<Department>,
    /// Words or phrases that take a customer to a person from any bot state; matched
    /// ignoring case and accents, as whole words.
    #[serde(default = "defaults::escalation_words")]
    pub escalation_words: Vec<String>,
    pub nps: Nps,
    #[serde(default)]
    pub ai: AiSettings,
    #[serde(default)]
    pub features: Features,
    /// Approved templates for messages that may fall outside the 24 h window.
    #[serde(default)]
    pub templates: Templates,
    /// The human desk: Chatwoot, the queue's texts, VIP contacts.
    #[serde(default)]
    pub desk: DeskSettings,
    /// Mass sending (when `features.campaigns_enabled`) and the opt-out words, which hold
    /// for every tenant.
    #[serde(default)]
    pub campaigns: CampaignSettings,
    /// Not configuration but the provider's switch on the stored tenant (`disabled` on its
    /// config item), set by the store as it reads the tenant: a disabled tenant's messages
    /// are parked and nothing is sent for it. Never in a file or in the stored JSON.
    #[serde(skip)]
    pub disabled: bool,
    /// Not configuration either: the tenant's enabled event subscriptions as the producers
    /// need them (`hooks` on its config item, kept by the subscription routes), so a worker
    /// knows without another read whether anything is wanted. Never in a file or in the
    /// stored JSON.
    #[serde(skip)]
    pub hooks: Vec<crate::hooks::Subscribed>,
}

mod defaults {
    pub fn ai_limit_reached() -> String {
        "Vou chamar um atendente para continuar o seu atendimento.".into()
    }
    pub fn ai_max_turns() -> u32 {
        8
    }
    pub fn ai_max_tokens_per_conversation() -> u32 {
        20_000
    }
    pub fn ai_max_tokens() -> u32 {
        400
    }
    pub fn ai_history_messages() -> u32 {
        12
    }
    pub fn language() -> String {
        "pt_BR".into()
    }
    pub fn timezone() -> chrono_tz::Tz {
        chrono_tz::America::Sao_Paulo
    }
    pub fn session_timeout_minutes() -> u32 {
        24 * 60
    }
    pub fn max_bot_attempts() -> u32 {
        3
    }
    pub fn retention_days() -> u32 {
        90
    }
    pub fn echo_silence_minutes() -> u32 {
        60
    }
    pub fn throughput_per_second() -> u32 {
        80
    }
    pub fn opt_out_words() -> Vec<String> {
        ["SAIR", "PARAR", "STOP", "não quero receber"]
            .map(String::from)
            .to_vec()
    }
    pub fn opt_out_reply() -> String {
        "Pronto, você não vai mais receber nossas mensagens promocionais. Para voltar a \
         receber, responda VOLTAR."
            .into()
    }
    pub fn opt_in_words() -> Vec<String> {
        vec!["VOLTAR".into()]
    }
    pub fn opt_in_reply() -> String {
        "Combinado, você voltará a receber nossas mensagens promocionais.".into()
    }
    pub fn failure_pause_threshold() -> f64 {
        0.1
    }
    pub fn escalation_words() -> Vec<String> {
        [
            "falar com atendente",
            "atendente",
            "humano",
            "pessoa",
            "reclamação",
            "cancelar",
            "gerente",
        ]
        .map(String::from)
        .to_vec()
    }
}

#[derive(Debug, Clone, PartialEq, Serialize, Deserialize)]
#[serde(deny_unknown_fields)]
pub struct Texts {
    /// First message of a conversation, before the menu. `{name}` is the customer's
    /// WhatsApp profile name (or nothing).
    pub greeting: String,
    /// Sent before the menu or question is repeated after an answer the bot did not get.
    pub not_understood: String,
    /// Sent once per closed period to who writes while the business is closed.
    pub off_hours: String,
    /// Sent when the conversation goes to the human queue.
    pub handoff: String,
    /// Sent while the AI attendant is not available for this tenant.
    pub ai_unavailable: String,
}

#[derive(Debug, Clone, PartialEq, Serialize, Deserialize)]
#[serde(deny_unknown_fields)]
pub struct Menu {
    pub body: String,
    #[serde(default)]
    pub header: Option<String>,
    #[serde(default)]
    pub footer: Option<String>,
    /// Label of the button that opens the list (used when there are more than 3 options).
    #[serde(default = "Menu::default_button")]
    pub button: String,
    pub options: Vec<MenuOption>,
}

impl Menu {
    fn default_button() -> String {
        "Ver opções".into()
    }
}

#[derive(Debug, Clone, PartialEq, Serialize, Deserialize)]
#[serde(deny_unknown_fields)]
pub struct MenuOption {
    pub id: String,
    pub title: String,
    #[serde(default)]
    pub description: Option<String>,
    /// Section of the list this option appears under (lists only).
    #[serde(default)]
    pub section: Option<String>,
    pub target: Target,
}

/// Where an answer leads. Written `human`, `ai`, `menu`, `close`, `{ department: <id> }`
/// or `{ step: <id> }`.
#[derive(Debug, Clone, PartialEq, Eq, Serialize, Deserialize)]
#[serde(try_from = "TargetRepr", into = "TargetRepr")]
pub enum Target {
    /// A department: its flow's first step, or its human queue when it has no flow.
    Department(String),
    /// A step of the current department's flow.
    Step(String),
    /// The human queue of the current department.
    Human,
    /// The AI attendant (ATENDIMENTO_IA) when the contract enables it.
    Ai,
    /// Back to the main menu.
    Menu,
    /// End the conversation (with the NPS survey when enabled).
    Close,
}

#[derive(Serialize, Deserialize)]
#[serde(untagged)]
enum TargetRepr {
    Word(String),
    Map(std::collections::BTreeMap<String, String>),
}

impl TryFrom<TargetRepr> for Target {
    type Error = String;

    fn try_from(repr: TargetRepr) -> Result<Self, Self::Error> {
        const EXPECTED: &str =
            "expected human, ai, menu, close, { department: <id> } or { step: <id> }";
        match repr {
            TargetRepr::Word(word) => match word.as_str() {
                "human" => Ok(Target::Human),
                "ai" => Ok(Target::Ai),
                "menu" => Ok(Target::Menu),
                "close" => Ok(Target::Close),
                _ => Err(format!("unknown target `{word}`: {EXPECTED}")),
            },
            TargetRepr::Map(map) => match map.into_iter().collect::<Vec<_>>().as_slice() {
                [(key, id)] if key == "department" => Ok(Target::Department(id.clone())),
                [(key, id)] if key == "step" => Ok(Target::Step(id.clone())),
                _ => Err(format!("unknown target: {EXPECTED}")),
            },
        }
    }
}

impl From<Target> for TargetRepr {
    fn from(target: Target) -> Self {
        let map = |key: &str, id| TargetRepr::Map([(key.to_owned(), id)].into());
        match target {
            Target::Department(id) => map("department", id),
            Target::Step(id) => map("step", id),
            Target::Human => TargetRepr::Word("human".into()),
            Target::Ai => TargetRepr::Word("ai".into()),
            Target::Menu => TargetRepr::Word("menu".into()),
            Target::Close => TargetRepr::Word("close".into()),
        }
    }
}

#[derive(Debug, Clone, PartialEq, Serialize, Deserialize)]
#[serde(deny_unknown_fields)]
pub struct Department {
    pub id: String,
    pub name: String,
    pub sla: Sla,
    /// The bot's questions before a person takes over; empty goes straight to the queue.
    #[serde(default)]
    pub flow: Vec<Step>,
    /// Where this department's customers enter the queue; VIP contacts enter `alta`.
    #[serde(default)]
    pub priority: Priority,
}

/// Queue priority, in the business's words. The queue serves `alta` first, then `media`,
/// then `baixa`; arrival order within each.
#[derive(Debug, Clone, Copy, PartialEq, Eq, PartialOrd, Ord, Default, Serialize, Deserialize)]
#[serde(rename_all = "snake_case")]
pub enum Priority {
    Alta,
    #[default]
    Media,
    Baixa,
}

impl Priority {
    /// Sorts first in the queue's sort key.
    pub fn rank(self) -> u8 {
        match self {
            Priority::Alta => 1,
            Priority::Media => 2,
            Priority::Baixa => 3,
        }
    }

    /// One level up, as an SLA breach moves a waiting customer.
    pub fn raised(self) -> Priority {
        match self {
            Priority::Baixa => Priority::Media,
            Priority::Media | Priority::Alta => Priority::Alta,
        }
    }

    pub fn as_str(self) -> &'static str {
        match self {
            Priority::Alta => "alta",
            Priority::Media => "media",
            Priority::Baixa => "baixa",
        }
    }
}

#[derive(Debug, Clone, Copy, PartialEq, Eq, Serialize, Deserialize)]
#[serde(deny_unknown_fields)]
pub struct Sla {
    pub alert_after_minutes: u32,
    pub max_wait_minutes: u32,
}

#[derive(Debug, Clone, PartialEq, Serialize, Deserialize)]
#[serde(deny_unknown_fields)]
pub struct Step {
    pub id: String,
    pub prompt: String,
    /// Offered as buttons (up to 3) or a list; without choices the step takes free text.
    #[serde(default)]
    pub choices: Vec<StepChoice>,
    /// Where free text leads (required when there are no choices).
    #[serde(default)]
    pub next: Option<Target>,
}

#[derive(Debug, Clone, PartialEq, Serialize, Deserialize)]
#[serde(deny_unknown_fields)]
pub struct StepChoice {
    pub id: String,
    pub title: String,
    #[serde(default)]
    pub description: Option<String>,
    /// Sent when this choice is taken, before going on.
    #[serde(default)]
    pub reply: Option<String>,
    pub next: Target,
}

#[derive(Debug, Clone, PartialEq, Serialize, Deserialize)]
#[serde(deny_unknown_fields)]
pub struct Nps {
    #[serde(default = "enabled")]
    pub enabled: bool,
    pub question: String,
    pub thanks: String,
    /// Sent when the conversation ends without a survey (or the survey is disabled).
    pub goodbye: String,
}

fn enabled() -> bool {
    true
}

/// The AI attendant (ATENDIMENTO_IA). Used only when `features.ai_enabled`; then `model`,
/// `system_prompt` and `greeting` are required.
#[derive(Debug, Clone, PartialEq, Serialize, Deserialize)]
#[serde(deny_unknown_fields)]
pub struct AiSettings {
    #[serde(default)]
    pub model: Option<String>,
    /// Company facts, tone and language. Customer text never changes it.
    #[serde(default)]
    pub system_prompt: Option<String>,
    /// Sent when a customer chooses the attendant from the menu.
    #[serde(default)]
    pub greeting: Option<String>,
    /// Sent, before the handoff, when the conversation's turns or tokens are spent.
    #[serde(default = "defaults::ai_limit_reached")]
    pub limit_reached: String,
    /// Answer to audio, images and documents; without one they go straight to a person.
    #[serde(default)]
    pub media_reply: Option<String>,
    /// Answers the attendant may give in one conversation before a person takes over.
    #[serde(default = "defaults::ai_max_turns")]
    pub max_turns: u32,
    /// Input plus output tokens one conversation may spend.
    #[serde(default = "defaults::ai_max_tokens_per_conversation")]
    pub max_tokens_per_conversation: u32,
    /// Output tokens of one answer: short enough for WhatsApp.
    #[serde(default = "defaults::ai_max_tokens")]
    pub max_tokens: u32,
    /// Messages of history sent with each question (and kept in the session).
    #[serde(default = "defaults::ai_history_messages")]
    pub history_messages: u32,
    /// Offers the attendant the `faq_lookup` tool over `faq`.
    #[serde(default)]
    pub faq_enabled: bool,
    #[serde(default)]
    pub faq: Vec<FaqEntry>,
}

impl Default for AiSettings {
    fn default() -> Self {
        Self {
            model: None,
            system_prompt: None,
            greeting: None,
            limit_reached: defaults::ai_limit_reached(),
            media_reply: None,
            max_turns: defaults::ai_max_turns(),
            max_tokens_per_conversation: defaults::ai_max_tokens_per_conversation(),
            max_tokens: defaults::ai_max_tokens(),
            history_messages: defaults::ai_history_messages(),
            faq_enabled: false,
            faq: Vec::new(),
        }
    }
}

/// One answer the business stands behind: prices, hours, policies.
#[derive(Debug, Clone, PartialEq, Eq, Serialize, Deserialize)]
#[serde(deny_unknown_fields)]
pub struct FaqEntry {
    /// What the attendant asks for: lower case, digits and `_`.
    pub id: String,
    /// What the entry is about, shown to the attendant to pick the entry.
    pub topic: String,
    pub answer: String,
}

/// Campaign pacing, Meta's messaging limit and the customer's opt-out.
#[derive(Debug, Clone, PartialEq, Serialize, Deserialize)]
#[serde(deny_unknown_fields)]
pub struct CampaignSettings {
    /// The Meta business portfolio the number belongs to: its messaging limit is shared by
    /// every number of the portfolio. Defaults to the tenant's `waba_id`.
    #[serde(default)]
    pub portfolio_id: Option<String>,
    /// The number's throughput for campaign sends (Meta: 80 by default, 20 for numbers
    /// in coexistence with the WhatsApp Business app, up to 1,000).
    #[serde(default = "defaults::throughput_per_second")]
    pub throughput_per_second: u32,
    /// The portfolio's messaging limit: unique customers reached outside a service window
    /// in a moving 24 h.
    #[serde(default)]
    pub daily_limit: DailyLimit,
    /// Words that put the customer on the suppression list when a typed message is one of
    /// them (ignoring case, accents and punctuation).
    #[serde(default = "defaults::opt_out_words")]
    pub opt_out_words: Vec<String>,
    #[serde(default = "defaults::opt_out_reply")]
    pub opt_out_reply: String,
    /// Words that take the customer off the suppression list again.
    #[serde(default = "defaults::opt_in_words")]
    pub opt_in_words: Vec<String>,
    #[serde(default = "defaults::opt_in_reply")]
    pub opt_in_reply: String,
    /// A running campaign pauses when this share of its last 200 sends failed for good.
    #[serde(default = "defaults::failure_pause_threshold")]
    pub failure_pause_threshold: f64,
}

impl Default for CampaignSettings {
    fn default() -> Self {
        Self {
            portfolio_id: None,
            throughput_per_second: defaults::throughput_per_second(),
            daily_limit: DailyLimit::default(),
            opt_out_words: defaults::opt_out_words(),
            opt_out_reply: defaults::opt_out_reply(),
            opt_in_words: defaults::opt_in_words(),
            opt_in_reply: defaults::opt_in_reply(),
            failure_pause_threshold: defaults::failure_pause_threshold(),
        }
    }
}

impl CampaignSettings {
    /// The portfolio whose messaging limit the tenant's sends count against.
    pub fn portfolio<'a>(&'a self, tenant: &'a Tenant) -> &'a str {
        self.portfolio_id.as_deref().unwrap_or(&tenant.waba_id)
    }
}

/// Meta's messaging limit tiers.
#[derive(Debug, Clone, Copy, PartialEq, Eq, Default, Serialize, Deserialize)]
pub enum DailyLimit {
    #[default]
    #[serde(rename = "250")]
    Tier250,
    #[serde(rename = "2000")]
    Tier2K,
    #[serde(rename = "10000")]
    Tier10K,
    #[serde(rename = "100000")]
    Tier100K,
    #[serde(rename = "unlimited")]
    Unlimited,
}

impl DailyLimit {
    /// Unique customers per moving 24 h; `None` when unlimited.
    pub fn customers(self) -> Option<u32> {
        match self {
            DailyLimit::Tier250 => Some(250),
            DailyLimit::Tier2K => Some(2_000),
            DailyLimit::Tier10K => Some(10_000),
            DailyLimit::Tier100K => Some(100_000),
            DailyLimit::Unlimited => None,
        }
    }
}

/// Contract-gated capabilities.
#[derive(Debug, Clone, Copy, PartialEq, Eq, Default, Serialize, Deserialize)]
#[serde(deny_unknown_fields)]
pub struct Features {
    #[serde(default)]
    pub ai_enabled: bool,
    #[serde(default)]
    pub campaigns_enabled: bool,
}

#[derive(Debug, Clone, PartialEq, Eq, Default, Serialize, Deserialize)]
#[serde(deny_unknown_fields)]
pub struct Templates {
    #[serde(default)]
    pub window_fallback: Option<TemplateRef>,
    #[serde(default)]
    pub off_hours_followup: Option<TemplateRef>,
    #[serde(default)]
    pub nps: Option<TemplateRef>,
    #[serde(default)]
    pub agent_reply: Option<TemplateRef>,
    #[serde(default)]
    pub sla_alert: Option<TemplateRef>,
}

/// The human desk. Without `chatwoot` the queue still works; agents then need another way
/// to see it (the ops CLI).
#[derive(Debug, Clone, PartialEq, Eq, Serialize, Deserialize)]
#[serde(deny_unknown_fields)]
pub struct DeskSettings {
    #[serde(default)]
    pub chatwoot: Option<Chatwoot>,
    /// Customers (WhatsApp ids) who always enter the queue at `alta`.
    #[serde(default)]
    pub vip_contacts: Vec<String>,
    /// Supervisors' WhatsApp numbers: SLA alerts go to them as the `sla_alert` template.
    #[serde(default)]
    pub supervisors: Vec<String>,
    /// After the business answers from the WhatsApp Business app, the bot keeps quiet in
    /// that conversation this long.
    #[serde(default = "defaults::echo_silence_minutes")]
    pub echo_silence_minutes: u32,
    /// Words that take a waiting customer out of the queue (matched like escalation words).
    #[serde(default)]
    pub give_up_words: Vec<String>,
    /// Told on entering the queue and when the place improves: `{position}`, `{minutes}`.
    #[serde(default)]
    pub position: Option<String>,
    /// Told instead of `position` while there is no recent handling time to estimate from.
    #[serde(default)]
    pub position_no_estimate: Option<String>,
    /// Told after leaving the queue with a give-up word.
    #[serde(default)]
    pub left_queue: Option<String>,
    /// Told when an agent takes the conversation: `{agent}` is the agent's name.
    #[serde(default)]
    pub assigned: Option<String>,
}

impl Default for DeskSettings {
    fn default() -> Self {
        Self {
            chatwoot: None,
            vip_contacts: Vec::new(),
            supervisors: Vec::new(),
            echo_silence_minutes: defaults::echo_silence_minutes(),
            give_up_words: Vec::new(),
            position: None,
            position_no_estimate: None,
            left_queue: None,
            assigned: None,
        }
    }
}

/// The tenant's Chatwoot account and its API-channel inbox; the access token lives in the
/// tenant secret (`chatwoot_token`).
#[derive(Debug, Clone, PartialEq, Eq, Serialize, Deserialize)]
#[serde(deny_unknown_fields)]
pub struct Chatwoot {
    pub base_url: String,
    pub account_id: u64,
    pub inbox_id: u64,
}

#[derive(Debug, Clone, PartialEq, Eq, Serialize, Deserialize)]
#[serde(deny_unknown_fields)]
pub struct TemplateRef {
    pub name: String,
    #[serde(default = "defaults::language")]
    pub language: String,
}

/// Opening intervals per weekday, in the tenant's time zone; a day left out is closed.
#[derive(Debug, Clone, PartialEq, Eq, Default, Serialize, Deserialize)]
#[serde(deny_unknown_fields)]
pub struct BusinessHours {
    #[serde(default)]
    pub monday: Vec<Interval>,
    #[serde(default)]
    pub tuesday: Vec<Interval>,
    #[serde(default)]
    pub wednesday: Vec<Interval>,
    #[serde(default)]
    pub thursday: Vec<Interval>,
    #[serde(default)]
    pub friday: Vec<Interval>,
    #[serde(default)]
    pub saturday: Vec<Interval>,
    #[serde(default)]
    pub sunday: Vec<Interval>,
}

impl BusinessHours {
    pub fn day(&self, weekday: chrono::Weekday) -> &[Interval] {
        use chrono::Weekday::*;
        match weekday {
            Mon => &self.monday,
            Tue => &self.tuesday,
            Wed => &self.wednesday,
            Thu => &self.thursday,
            Fri => &self.friday,
            Sat => &self.saturday,
            Sun => &self.sunday,
        }
    }

    fn days(&self) -> [(&'static str, &[Interval]); 7] {
        [
            ("monday", &self.monday),
            ("tuesday", &self.tuesday),
            ("wednesday", &self.wednesday),
            ("thursday", &self.thursday),
            ("friday", &self.friday),
            ("saturday", &self.saturday),
            ("sunday", &self.sunday),
        ]
    }
}

/// `open: "08:00"`, `close: "18:00"`; close is exclusive.
#[derive(Debug, Clone, Copy, PartialEq, Eq, Serialize, Deserialize)]
#[serde(deny_unknown_fields)]
pub struct Interval {
    #[serde(
        serialize_with = "hh_mm::serialize",
        deserialize_with = "hh_mm::deserialize"
    )]
    pub open: NaiveTime,
    #[serde(
        serialize_with = "hh_mm::serialize",
        deserialize_with = "hh_mm::deserialize"
    )]
    pub close: NaiveTime,
}

mod hh_mm {
    use super::*;

    pub fn serialize<S: Serializer>(time: &NaiveTime, serializer: S) -> Result<S::Ok, S::Error> {
        serializer.serialize_str(&time.format("%H:%M").to_string())
    }

    pub fn deserialize<'de, D: Deserializer<'de>>(deserializer: D) -> Result<NaiveTime, D::Error> {
        let text = String::deserialize(deserializer)?;
        NaiveTime::parse_from_str(&text, "%H:%M")
            .map_err(|_| serde::de::Error::custom(format!("`{text}` is not a time as HH:MM")))
    }
}

/// A tenant file that cannot be used, with where and why.
#[derive(Debug, Clone, PartialEq, Eq, Error)]
#[error("{file}: {field}: {rule}")]
pub struct TenantError {
    pub file: String,
    pub field: String,
    pub rule: String,
}

impl TenantError {
    /// The field as a JSON pointer (RFC 6901) into the tenant document:
    /// `menu.sections[0].title` is `/menu/sections/0/title`, the whole document `""`.
    pub fn pointer(&self) -> String {
        if self.field == "(document)" {
            return String::new();
        }
        let mut pointer = String::new();
        for part in self.field.split(['.', '[']) {
            let part = part.strip_suffix(']').unwrap_or(part);
            pointer.push('/');
            pointer.push_str(&part.replace('~', "~0").replace('/', "~1"));
        }
        pointer
    }
}

impl Tenant {
    /// Parses and validates a tenant YAML file's contents; `file` names it in errors.
    #[cfg(feature = "yaml")]
    pub fn from_yaml(file: &str, text: &str) -> Result<Tenant, TenantError> {
        Self::checked(file, serde_yaml_ng::Deserializer::from_str(text))
    }

    /// A tenant given as JSON (the platform API's bodies, stored versions): the same rules
    /// and errors as a file.
    #[cfg(feature = "yaml")]
    pub fn from_json(file: &str, value: &serde_json::Value) -> Result<Tenant, TenantError> {
        Self::checked(file, value)
    }

    #[cfg(feature = "yaml")]
    fn checked<'de, D: Deserializer<'de>>(
        file: &str,
        deserializer: D,
    ) -> Result<Tenant, TenantError> {
        let tenant: Tenant = serde_path_to_error::deserialize(deserializer).map_err(|error| {
            let field = error.path().to_string();
            TenantError {
                file: file.into(),
                field: if field == "." {
                    "(document)".into()
                } else {
                    field
                },
                rule: error.into_inner().to_string(),
            }
        })?;
        tenant.validate().map_err(|error| TenantError {
            file: file.into(),
            field: error.field,
            rule: error.rule,
        })?;
        Ok(tenant)
    }

    pub fn department(&self, id: &str) -> Option<&Department> {
        self.departments.iter().find(|d| d.id == id)
    }
}

#[cfg(all(test, feature = "yaml"))]
mod tests {
    use super::*;

    const DEMO: &str = include_str!("../../../infra/tenants/demo.yaml");

    fn error_for(edit: impl FnOnce(String) -> String) -> TenantError {
        Tenant::from_yaml("tenants/x.yaml", &edit(DEMO.to_owned())).unwrap_err()
    }

    #[test]
    fn the_demo_tenant_is_valid_and_round_trips_as_json() {
        let tenant = Tenant::from_yaml("demo.yaml", DEMO).unwrap();
        assert_eq!(tenant.timezone, chrono_tz::America::Sao_Paulo);
        assert_eq!(tenant.departments.len(), 4);
        let json = serde_json::to_string(&tenant).unwrap();
        assert_eq!(serde_json::from_str::<Tenant>(&json).unwrap(), tenant);
    }

    #[test]
    fn retention_keeps_at_least_the_dedup_window() {
        let with =
            |days: u32| DEMO.replace("retention_days: 90", &format!("retention_days: {days}"));
        let short = Tenant::from_yaml("tenants/x.yaml", &with(MIN_RETENTION_DAYS - 1)).unwrap_err();
        assert_eq!(short.field, "retention_days");
        assert!(short.rule.contains("at least 8"), "{short}");
        let tenant = Tenant::from_yaml("tenants/x.yaml", &with(MIN_RETENTION_DAYS)).unwrap();
        assert_eq!(tenant.retention_days, 8);
        assert!(Tenant::from_yaml("demo.yaml", DEMO).unwrap().retention_days >= MIN_RETENTION_DAYS);
    }

    #[test]
    fn desk_settings_are_checked_with_their_field() {
        let position = error_for(|y| y.replace("cerca de {minutes} min", "em breve"));
        assert_eq!(position.field, "desk.position");
        assert_eq!(position.rule, "must contain {minutes}");
        let vip = error_for(|y| y.replace("\"5511999990000\"", "\"+55 11 99999-0000\""));
        assert_eq!(vip.field, "desk.vip_contacts[0]");
        let url = error_for(|y| y.replace("https://chatwoot.", "chatwoot."));
        assert_eq!(url.field, "desk.chatwoot.base_url");
        let plain = error_for(|y| y.replace("https://chatwoot.", "http://chatwoot."));
        assert!(plain.rule.contains("https"), "{}", plain.rule);
        // User info would make `localhost` the user name and the next name the host.
        let disguised =
            error_for(|y| y.replace("https://chatwoot.", "http://localhost:80@chatwoot."));
        assert_eq!(disguised.field, "desk.chatwoot.base_url");
        let priority = error_for(|y| y.replace("priority: baixa", "priority: urgente"));
        assert_eq!(priority.field, "departments[2].priority");
        assert!(
            priority.rule.contains("unknown variant `urgente`"),
            "{}",
            priority.rule
        );
    }

    #[test]
    fn json_is_held_to_the_same_rules_and_fields_become_pointers() {
        let demo = Tenant::from_yaml("demo.yaml", DEMO).unwrap();
        let mut json = serde_json::to_value(&demo).unwrap();
        assert_eq!(Tenant::from_json("config", &json).unwrap(), demo);
        json["menu"]["options"][1]["title"] = "Contratar um plano novo agora".into();
        let error = Tenant::from_json("config", &json).unwrap_err();
        assert_eq!(error.field, "menu.sections[0].rows[1].title");
        assert_eq!(error.pointer(), "/menu/sections/0/rows/1/title");
        json["disabled"] = true.into();
        let error = Tenant::from_json("config", &json).unwrap_err();
        assert_eq!(error.pointer(), "/disabled", "{error}");
        assert!(error.rule.contains("unknown field `disabled`"), "{error}");
    }

    #[test]
    fn campaign_settings_default_and_are_checked() {
        let demo = Tenant::from_yaml("demo.yaml", DEMO).unwrap();
        assert_eq!(demo.campaigns, CampaignSettings::default());
        assert_eq!(demo.campaigns.portfolio(&demo), demo.waba_id);
        assert_eq!(demo.campaigns.daily_limit.customers(), Some(250));
        fn section(body: &str) -> impl FnOnce(String) -> String + '_ {
            move |y| y.replace("\nfeatures:", &format!("\ncampaigns:\n{body}\nfeatures:"))
        }
        let set = Tenant::from_yaml(
            "tenants/x.yaml",
            &section(
                "  portfolio_id: \"998877\"\n  daily_limit: \"2000\"\n  throughput_per_second: 20",
            )(DEMO.to_owned()),
        )
        .unwrap();
        assert_eq!(set.campaigns.portfolio(&set), "998877");
        assert_eq!(set.campaigns.daily_limit.customers(), Some(2_000));
        assert_eq!(set.campaigns.throughput_per_second, 20);

        for (body, field) in [
            (
                "  throughput_per_second: 0",
                "campaigns.throughput_per_second",
            ),
            (
                "  throughput_per_second: 1001",
                "campaigns.throughput_per_second",
            ),
            ("  portfolio_id: \"abc\"", "campaigns.portfolio_id"),
            ("  opt_out_words: []", "campaigns.opt_out_words"),
            ("  opt_in_words: [\"Stop\"]", "campaigns.opt_in_words"),
            ("  opt_out_reply: \" \"", "campaigns.opt_out_reply"),
            (
                "  failure_pause_threshold: 0",
                "campaigns.failure_pause_threshold",
            ),
        ] {
            let error = error_for(section(body));
            assert_eq!(error.field, field, "{body}: {error}");
        }
        let tier = Tenant::from_yaml(
            "tenants/x.yaml",
            &section("  daily_limit: \"300\"")(DEMO.to_owned()),
        )
        .unwrap_err();
        assert!(tier.to_string().contains("daily_limit"), "{tier}");
    }

    #[test]
    fn errors_name_the_file_the_field_and_the_rule() {
        let long_title = error_for(|y| {
            y.replace(
                "title: Contratar plano",
                "title: Contratar um plano novo agora",
            )
        });
        assert_eq!(long_title.file, "tenants/x.yaml");
        assert_eq!(long_title.field, "menu.sections[0].rows[1].title");
        assert_eq!(long_title.rule, "at most 24 characters (has 29)");

        let missing = error_for(|y| {
            y.replace(
                "target: { department: vendas }",
                "target: { department: comercial }",
            )
        });
        assert_eq!(missing.field, "menu.options[1].target");
        assert_eq!(missing.rule, "department `comercial` does not exist");

        let step = error_for(|y| y.replace("next: { step: cep }", "next: { step: endereco }"));
        assert_eq!(step.field, "departments[1].flow[0].choices[0].next");
        assert!(step.rule.contains("step `endereco` does not exist"));

        let button =
            error_for(|y| y.replace("title: Outro problema", "title: Outro problema de conexão"));
        assert_eq!(button.field, "departments[0].flow[0].buttons[2].title");
        assert_eq!(button.rule, "at most 20 characters (has 25)");

        let ai = error_for(|y| y.replace("ai_enabled: true", "ai_enabled: false"));
        assert_eq!(ai.field, "menu.options[3].target");
        assert!(ai.rule.contains("features.ai_enabled"));

        let no_greeting = error_for(|y| {
            let start = y.find("  greeting: \"Pode").unwrap();
            let end = start + y[start..].find('\n').unwrap() + 1;
            format!("{}{}", &y[..start], &y[end..])
        });
        assert_eq!(no_greeting.field, "ai.greeting");
        assert_eq!(
            no_greeting.rule,
            "is required when features.ai_enabled is true"
        );
        let turns = error_for(|y| y.replace("max_turns: 8", "max_turns: 0"));
        assert_eq!(turns.field, "ai.max_turns");
        assert_eq!(turns.rule, "must be between 1 and 100");
        let twice = error_for(|y| y.replace("- id: horario", "- id: planos"));
        assert_eq!(twice.field, "ai.faq[2].id");
        assert_eq!(twice.rule, "`planos` is used twice");

        let unknown = error_for(|y| {
            y.replace(
                "max_bot_attempts: 3",
                "max_bot_attempts: 3\nmax_attempts: 5",
            )
        });
        assert_eq!(unknown.field, "max_attempts");
        assert!(
            unknown.rule.contains("unknown field `max_attempts`"),
            "{unknown}"
        );

        let time = error_for(|y| y.replace("open: \"09:00\"", "open: \"9h\""));
        assert_eq!(time.field, "business_hours.saturday[0].open");
        assert!(time.rule.contains("`9h` is not a time as HH:MM"));

        let zone = error_for(|y| y.replace("timezone: America/Sao_Paulo", "timezone: Brasilia"));
        assert_eq!(zone.field, "timezone");

        let target = error_for(|y| y.replacen("next: human", "next: humano", 1));
        assert!(target.rule.contains("unknown target `humano`"), "{target}");
        assert!(
            target
                .to_string()
                .starts_with("tenants/x.yaml: departments[0].flow[2].next: "),
            "{target}"
        );
    }
}
