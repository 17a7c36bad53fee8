//! Campaigns in the table, one code path for the API and the ops CLI: create, read, list,
//! edit a draft, import the audience, and move a campaign along its lifecycle
//! ([`crate::campaign`]), each write conditional on the `version` read and each change
//! recorded in the tenant's audit log (`campaign.create`, `.update`, `.audience`,
//! `.submit`, `.approve`, `.reject`, `.pause`, `.resume`, `.cancel`) with its actor.
//!
//! Items (the contract of issue 14): `CAMPAIGN#<pn>`/`C#<id>` the campaign (no customer
//! data; kept 400 days) and `CAMPAIGN#<pn>#<id>`/`R#<seq>` its recipients (kept the
//! tenant's retention), written by the import in seq order from 1 with suppressed
//! customers left out. Ids sort by creation time, so lists are newest first.
//!
//! Only tenants with `features.campaigns_enabled` create, edit, import, submit, approve or
//! resume; pausing and cancelling (stopping) and reading are always allowed.

use std::collections::{BTreeMap, HashMap, HashSet};
use std::time::Duration as StdDuration;

use aws_sdk_dynamodb::types::{AttributeValue, PutRequest, WriteRequest};
use chrono::{DateTime, Duration, TimeZone, Utc};
use futures::{Stream, StreamExt};
use serde::Serialize;

use super::access::{Access, Need, Owner, Principal};
use super::audit::{self, Entry};
use super::members;
use super::{Continuation, Db, Page, PlatformError};
use crate::campaign::audience::{AudienceError, Parameter, Recipient, Rejected, Report};
use crate::campaign::dynamodb::{campaign_pk, campaign_sk, due_pk, recipient_sk, recipients_pk};
use crate::campaign::{self, Actor, Authorship, CampaignError, ID_PREFIX, Operation, State};
use crate::store::Store;
use crate::store::dynamodb::DynamoStore;
use crate::store::keys::{self, EXPIRES_AT, PK, SK};
use crate::tenant::Tenant;

type Item = HashMap<String, AttributeValue>;

/// How long a campaign item is kept (it holds no customer data).
pub const CAMPAIGN_KEPT: Duration = Duration::days(400);
/// A campaign's longest name.
pub const MAX_NAME: usize = 200;
/// Most template parameters (WhatsApp's body takes far fewer).
pub const MAX_PARAMETERS: usize = 64;
/// The most recipients one campaign takes.
pub const MAX_AUDIENCE: u64 = 1_000_000;
/// The longest reason of a rejection or a pause.
pub const MAX_REASON: usize = 500;
/// The flag a tenant needs.
pub const FLAG: &str = "features.campaigns_enabled";

const BATCH: usize = 25;
/// Batches written at once by an import.
const BATCHES_IN_FLIGHT: usize = 16;
/// Ids sort by time: ASCII order of this alphabet is its value order.
const SORTABLE_BASE32: &[u8; 32] = b"234567abcdefghijklmnopqrstuvwxyz";

/// A new id: 48 bits of milliseconds and 80 random bits, 26 sortable base32 characters.
pub fn new_id(now: DateTime<Utc>) -> String {
    let mut random = [0u8; 10];
    getrandom::getrandom(&mut random).expect("the operating system's random source");
    let mut bits = (now.timestamp_millis().max(0) as u128 & ((1 << 48) - 1)) << 80;
    for (index, byte) in random.iter().enumerate() {
        bits |= (*byte as u128) << (8 * (9 - index));
    }
    let mut out = [0u8; 26];
    // 26 characters of 5 bits hold 130: the first holds the top 3.
    for slot in out.iter_mut().rev() {
        *slot = SORTABLE_BASE32[(bits & 0x1f) as usize];
        bits >>= 5;
    }
    format!(
        "{ID_PREFIX}{}",
        String::from_utf8(out.to_vec()).expect("ASCII")
    )
}

fn is_id(id: &str) -> bool {
    id.strip_prefix(ID_PREFIX)
        .is_some_and(|tail| tail.len() == 26 && tail.bytes().all(|b| SORTABLE_BASE32.contains(&b)))
}

/// The campaign rules' view of a caller in `tenant`.
pub fn actor<'p>(principal: &'p Principal, tenant: &str) -> Actor<'p> {
    match principal {
        Principal::Key { id, .. } => Actor::Key {
            id,
            writes: principal.access(Some(tenant), Need::CampaignsWrite) == Access::Allowed,
        },
        Principal::Person { sub, .. } => Actor::Person {
            sub,
            decides: principal.access(Some(tenant), Need::Approve) == Access::Allowed,
        },
    }
}

/// A campaign as stored.
#[derive(Debug, Clone, PartialEq, Serialize)]
pub struct Campaign {
    pub id: String,
    pub state: State,
    pub version: u64,
    pub name: String,
    pub template_name: String,
    pub template_language: String,
    pub template_category: Option<String>,
    pub parameters: Vec<Parameter>,
    pub start_at: Option<DateTime<Utc>>,
    pub business_hours_only: bool,
    pub created_by: String,
    pub created_at: DateTime<Utc>,
    pub on_behalf_of: Option<String>,
    pub submitted_by: Option<String>,
    pub decided_by: Option<String>,
    pub decided_at: Option<DateTime<Utc>>,
    pub reject_reason: Option<String>,
    pub paused_reason: Option<String>,
    pub audience_size: Option<u64>,
    pub suppressed: Option<u64>,
    pub bad_rows: Option<u64>,
    /// `n_queued`, `n_sent`, ... `n_failed_<code>`: the sender's counters.
    pub counters: BTreeMap<String, u64>,
}

impl Campaign {
    fn authorship(&self) -> Authorship<'_> {
        Authorship {
            created_by: &self.created_by,
            on_behalf_of: self.on_behalf_of.as_deref(),
            submitted_by: self.submitted_by.as_deref(),
        }
    }
}

/// What a new campaign (or an edit, field by field) says.
#[derive(Debug, Clone, Default, PartialEq)]
pub struct Fields {
    pub name: Option<String>,
    pub template_name: Option<String>,
    pub template_language: Option<String>,
    pub parameters: Option<Vec<Parameter>>,
    /// `Some(None)` clears it (start on approval).
    pub start_at: Option<Option<DateTime<Utc>>>,
    pub business_hours_only: Option<bool>,
}

fn s(text: impl Into<String>) -> AttributeValue {
    AttributeValue::S(text.into())
}

fn n(number: impl ToString) -> AttributeValue {
    AttributeValue::N(number.to_string())
}

fn text<'a>(item: &'a Item, name: &str) -> Option<&'a str> {
    item.get(name)
        .and_then(|v| v.as_s().ok())
        .map(String::as_str)
}

fn number(item: &Item, name: &str) -> Option<u64> {
    item.get(name)
        .and_then(|v| v.as_n().ok())
        .and_then(|v| v.parse().ok())
}

fn epoch(seconds: u64) -> Option<DateTime<Utc>> {
    Utc.timestamp_opt(seconds as i64, 0).single()
}

fn key(pk: String, sk: String) -> Item {
    HashMap::from([(PK.to_owned(), s(pk)), (SK.to_owned(), s(sk))])
}

fn corrupt(id: &str) -> PlatformError {
    PlatformError::Database(format!("campaign {id} is not readable"))
}

fn from_item(item: &Item) -> Result<Campaign, PlatformError> {
    let id = text(item, SK)
        .and_then(|sk| sk.strip_prefix("C#"))
        .unwrap_or_default()
        .to_owned();
    let required = |name: &str| {
        text(item, name)
            .map(str::to_owned)
            .ok_or_else(|| corrupt(&id))
    };
    let optional = |name: &str| text(item, name).map(str::to_owned);
    let counters = item
        .iter()
        .filter(|(name, _)| name.starts_with("n_"))
        .filter_map(|(name, value)| Some((name.clone(), value.as_n().ok()?.parse().ok()?)))
        .collect();
    Ok(Campaign {
        state: required("state")?.parse().map_err(|_| corrupt(&id))?,
        version: number(item, "version").ok_or_else(|| corrupt(&id))?,
        name: required("name")?,
        template_name: required("template_name")?,
        template_language: required("template_language")?,
        template_category: optional("template_category"),
        parameters: serde_json::from_str(&required("parameters")?).map_err(|_| corrupt(&id))?,
        start_at: number(item, "start_at").and_then(epoch),
        business_hours_only: item
            .get("business_hours_only")
            .is_some_and(|v| v.as_bool() == Ok(&true)),
        created_by: required("created_by")?,
        created_at: number(item, "created_at")
            .and_then(epoch)
            .ok_or_else(|| corrupt(&id))?,
        on_behalf_of: optional("on_behalf_of"),
        submitted_by: optional("submitted_by"),
        decided_by: optional("decided_by"),
        decided_at: number(item, "decided_at").and_then(epoch),
        reject_reason: optional("reject_reason"),
        paused_reason: optional("paused_reason"),
        audience_size: number(item, "audience_size"),
        suppressed: number(item, "suppressed"),
        bad_rows: number(item, "bad_rows"),
        counters,
        id,
    })
}

fn denied(error: CampaignError) -> PlatformError {
    match error {
        CampaignError::Denied(rule) => PlatformError::Forbidden(rule.to_string()),
        CampaignError::Transition { .. } => PlatformError::Conflict(error.to_string()),
    }
}

fn is_conditional_failure<E: std::fmt::Debug>(error: &E) -> bool {
    format!("{error:?}").contains("ConditionalCheckFailed")
}

fn changed_meanwhile() -> PlatformError {
    PlatformError::Conflict("the campaign changed meanwhile: read it again".into())
}

/// The tenant, when it may run campaigns (else a refusal naming the flag).
async fn enabled_tenant(db: &Db, tenant: &str) -> Result<Tenant, PlatformError> {
    let store = DynamoStore::new(db.client.clone(), db.table.clone());
    let found = store
        .tenant(tenant)
        .await
        .map_err(|error| PlatformError::Database(error.to_string()))?
        .ok_or(PlatformError::NotFound)?;
    if !found.features.campaigns_enabled {
        return Err(PlatformError::Refused(format!(
            "campaigns are not enabled for this tenant ({FLAG} is false)"
        )));
    }
    Ok(found)
}

fn validate_name(name: &str) -> Result<(), PlatformError> {
    if name.trim().is_empty() || name.chars().count() > MAX_NAME {
        return Err(PlatformError::invalid(
            "/name",
            format!("1 to {MAX_NAME} characters, not blank"),
        ));
    }
    Ok(())
}

fn validate_template(name: &str, language: &str) -> Result<(), PlatformError> {
    let content = crate::envelope::SendContent::Template {
        name: name.to_owned(),
        language: language.to_owned(),
        components: Vec::new(),
    };
    super::send::validate_content(&content).map_err(|error| match error {
        PlatformError::Invalid { pointer, detail } => PlatformError::Invalid {
            pointer: pointer
                .replace("/content/template/name", "/template_name")
                .replace("/content/template/language", "/template_language"),
            detail,
        },
        other => other,
    })
}

fn validate_parameters(parameters: &[Parameter]) -> Result<(), PlatformError> {
    if parameters.len() > MAX_PARAMETERS {
        return Err(PlatformError::invalid(
            "/parameters",
            format!("at most {MAX_PARAMETERS}"),
        ));
    }
    for (index, parameter) in parameters.iter().enumerate() {
        let (Parameter::Column(value) | Parameter::Text(value)) = parameter;
        let column = matches!(parameter, Parameter::Column(_));
        if value.trim().is_empty() || value.chars().count() > campaign::audience::MAX_PARAMETER {
            return Err(PlatformError::invalid(
                format!("/parameters/{index}"),
                "a column name or a text of 1 to 1024 characters, not blank",
            ));
        }
        if column && value.eq_ignore_ascii_case(campaign::audience::PHONE_COLUMN) {
            return Err(PlatformError::invalid(
                format!("/parameters/{index}"),
                "the phone column is not a parameter",
            ));
        }
    }
    Ok(())
}

fn validate_start(
    start_at: Option<DateTime<Utc>>,
    now: DateTime<Utc>,
) -> Result<(), PlatformError> {
    match start_at {
        Some(at) if at > now + Duration::days(365) => Err(PlatformError::invalid(
            "/start_at",
            "within a year from now",
        )),
        _ => Ok(()),
    }
}

/// A new draft. A key names the person it writes for (`on_behalf_of`, a member of the
/// tenant); a person writes for themselves.
pub async fn create(
    db: &Db,
    tenant: &str,
    actor: Actor<'_>,
    fields: &Fields,
    on_behalf_of: Option<&str>,
    now: DateTime<Utc>,
) -> Result<Campaign, PlatformError> {
    campaign::may_create(actor, on_behalf_of).map_err(denied)?;
    enabled_tenant(db, tenant).await?;
    let required = |field: &Option<String>, pointer: &str| {
        field
            .clone()
            .ok_or_else(|| PlatformError::invalid(pointer, "required"))
    };
    let name = required(&fields.name, "/name")?;
    let template_name = required(&fields.template_name, "/template_name")?;
    let template_language = required(&fields.template_language, "/template_language")?;
    let parameters = fields.parameters.clone().unwrap_or_default();
    let start_at = fields.start_at.flatten();
    validate_name(&name)?;
    validate_template(&template_name, &template_language)?;
    validate_parameters(&parameters)?;
    validate_start(start_at, now)?;
    let on_behalf_of = match actor {
        Actor::Key { .. } => {
            let person = on_behalf_of.unwrap_or_default();
            let member = person.len() <= 128
                && members::memberships(db, person)
                    .await?
                    .tenants
                    .contains_key(tenant);
            if !member {
                return Err(PlatformError::invalid(
                    "/on_behalf_of",
                    "the sub of a member of the tenant",
                ));
            }
            Some(person.to_owned())
        }
        Actor::Person { .. } | Actor::Operator { .. } | Actor::System { .. } => None,
    };
    let campaign = Campaign {
        id: new_id(now),
        state: State::Draft,
        version: 1,
        name,
        template_name,
        template_language,
        template_category: None,
        parameters,
        start_at,
        business_hours_only: fields.business_hours_only.unwrap_or(false),
        created_by: actor.id(),
        created_at: now,
        on_behalf_of,
        submitted_by: None,
        decided_by: None,
        decided_at: None,
        reject_reason: None,
        paused_reason: None,
        audience_size: None,
        suppressed: None,
        bad_rows: None,
        counters: BTreeMap::new(),
    };
    let mut item = key(campaign_pk(tenant), campaign_sk(&campaign.id));
    item.extend([
        ("state".to_owned(), s(State::Draft.as_str())),
        ("version".to_owned(), n(1)),
        ("name".to_owned(), s(&campaign.name)),
        ("template_name".to_owned(), s(&campaign.template_name)),
        (
            "template_language".to_owned(),
            s(&campaign.template_language),
        ),
        (
            "parameters".to_owned(),
            s(serde_json::to_string(&campaign.parameters).expect("parameters serialise")),
        ),
        (
            "business_hours_only".to_owned(),
            AttributeValue::Bool(campaign.business_hours_only),
        ),
        ("created_by".to_owned(), s(&campaign.created_by)),
        ("created_at".to_owned(), n(now.timestamp())),
        (EXPIRES_AT.to_owned(), n((now + CAMPAIGN_KEPT).timestamp())),
    ]);
    if let Some(at) = campaign.start_at {
        item.insert("start_at".into(), n(at.timestamp()));
    }
    if let Some(person) = &campaign.on_behalf_of {
        item.insert("on_behalf_of".into(), s(person));
    }
    db.client
        .put_item()
        .table_name(&db.table)
        .set_item(Some(item))
        .condition_expression("attribute_not_exists(pk)")
        .send()
        .await
        .map_err(PlatformError::database)?;
    record(
        db,
        tenant,
        &actor.id(),
        "campaign.create",
        &campaign.id,
        serde_json::json!({"template": campaign.template_name, "on_behalf_of": campaign.on_behalf_of}),
        now,
    )
    .await?;
    Ok(campaign)
}

async fn record(
    db: &Db,
    tenant: &str,
    actor: &str,
    action: &str,
    target: &str,
    detail: serde_json::Value,
    at: DateTime<Utc>,
) -> Result<(), PlatformError> {
    let entry = Entry {
        at,
        actor: actor.to_owned(),
        action: action.to_owned(),
        target: target.to_owned(),
        detail,
    };
    audit::record(db, &Owner::Tenant(tenant.to_owned()), &entry).await
}

/// The tenant's campaign `id` (another tenant's reads as missing).
pub async fn get(db: &Db, tenant: &str, id: &str) -> Result<Campaign, PlatformError> {
    if !is_id(id) {
        return Err(PlatformError::NotFound);
    }
    let output = db
        .client
        .get_item()
        .table_name(&db.table)
        .set_key(Some(key(campaign_pk(tenant), campaign_sk(id))))
        .consistent_read(true)
        .send()
        .await
        .map_err(PlatformError::database)?;
    output
        .item
        .as_ref()
        .map(from_item)
        .transpose()?
        .ok_or(PlatformError::NotFound)
}

/// One page of the tenant's campaigns, newest first, in one state when `state` is given
/// (a filtered page may be short and still have a next one).
pub async fn list(
    db: &Db,
    tenant: &str,
    state: Option<State>,
    limit: i32,
    from: Option<&Continuation>,
) -> Result<Page<Campaign>, PlatformError> {
    let mut query = db
        .client
        .query()
        .table_name(&db.table)
        .key_condition_expression("#pk = :pk AND begins_with(#sk, :c)")
        .expression_attribute_names("#pk", PK)
        .expression_attribute_names("#sk", SK)
        .expression_attribute_values(":pk", s(campaign_pk(tenant)))
        .expression_attribute_values(":c", s("C#"))
        .scan_index_forward(false)
        .limit(limit)
        .set_exclusive_start_key(from.map(Continuation::start_key));
    if let Some(state) = state {
        query = query
            .filter_expression("#state = :state")
            .expression_attribute_names("#state", "state")
            .expression_attribute_values(":state", s(state.as_str()));
    }
    let output = query.send().await.map_err(PlatformError::database)?;
    Ok(Page {
        items: output
            .items()
            .iter()
            .map(from_item)
            .collect::<Result<_, _>>()?,
        next: Continuation::from_last_evaluated(output.last_evaluated_key()),
    })
}

/// Changes a draft's fields, if it is still at `version`. The template and its parameters
/// stay as they are once the audience is imported (its rows were checked against them).
pub async fn update_draft(
    db: &Db,
    tenant: &str,
    id: &str,
    actor: Actor<'_>,
    fields: &Fields,
    version: u64,
    now: DateTime<Utc>,
) -> Result<Campaign, PlatformError> {
    let current = get(db, tenant, id).await?;
    campaign::may(actor, &current.authorship(), Operation::Edit).map_err(denied)?;
    campaign::next_state(current.state, Operation::Edit).map_err(denied)?;
    enabled_tenant(db, tenant).await?;
    if current.version != version {
        return Err(changed_meanwhile());
    }
    let mut names = HashMap::from([("#state".to_owned(), "state".to_owned())]);
    let mut values = HashMap::from([
        (":version".to_owned(), n(version)),
        (":one".to_owned(), n(1)),
        (":draft".to_owned(), s(State::Draft.as_str())),
    ]);
    let mut sets = vec!["version = version + :one".to_owned()];
    let mut removes = Vec::new();
    let mut changed = Vec::new();
    let mut set = |field: &'static str, value: AttributeValue| {
        names.insert(format!("#{field}"), field.to_owned());
        values.insert(format!(":{field}"), value);
        sets.push(format!("#{field} = :{field}"));
        changed.push(field);
    };
    let template_fixed = current.audience_size.is_some();
    let template_change = fields.template_name.is_some()
        || fields.template_language.is_some()
        || fields.parameters.is_some();
    if template_fixed && template_change {
        return Err(PlatformError::Conflict(
            "the audience was imported for this template and parameters: create a new campaign to change them".into(),
        ));
    }
    if let Some(name) = &fields.name {
        validate_name(name)?;
        set("name", s(name));
    }
    let template_name = fields
        .template_name
        .as_ref()
        .unwrap_or(&current.template_name);
    let language = fields
        .template_language
        .as_ref()
        .unwrap_or(&current.template_language);
    validate_template(template_name, language)?;
    if let Some(name) = &fields.template_name {
        set("template_name", s(name));
    }
    if let Some(language) = &fields.template_language {
        set("template_language", s(language));
    }
    if let Some(parameters) = &fields.parameters {
        validate_parameters(parameters)?;
        set(
            "parameters",
            s(serde_json::to_string(parameters).expect("parameters serialise")),
        );
    }
    if let Some(hours) = fields.business_hours_only {
        set("business_hours_only", AttributeValue::Bool(hours));
    }
    match fields.start_at {
        Some(Some(at)) => {
            validate_start(Some(at), now)?;
            set("start_at", n(at.timestamp()));
        }
        Some(None) => {
            removes.push("start_at");
            changed.push("start_at");
        }
        None => {}
    }
    let mut expression = format!("SET {}", sets.join(", "));
    if !removes.is_empty() {
        expression.push_str(&format!(" REMOVE {}", removes.join(", ")));
    }
    let updated = db
        .client
        .update_item()
        .table_name(&db.table)
        .set_key(Some(key(campaign_pk(tenant), campaign_sk(id))))
        .update_expression(expression)
        .condition_expression(
            "version = :version AND #state = :draft AND attribute_not_exists(importing_at)",
        )
        .set_expression_attribute_names(Some(names))
        .set_expression_attribute_values(Some(values))
        .return_values(aws_sdk_dynamodb::types::ReturnValue::AllNew)
        .send()
        .await;
    let item = match updated {
        Ok(output) => output.attributes.unwrap_or_default(),
        Err(error) if is_conditional_failure(&error) => return Err(changed_meanwhile()),
        Err(error) => return Err(PlatformError::database(error)),
    };
    record(
        db,
        tenant,
        &actor.id(),
        "campaign.update",
        id,
        serde_json::json!({"fields": changed}),
        now,
    )
    .await?;
    from_item(&item)
}

/// Why a submission was refused: the template is not approved (or not known).
async fn check_template(
    db: &Db,
    tenant: &Tenant,
    campaign: &Campaign,
) -> Result<Option<String>, PlatformError> {
    let pk = keys::waba(&tenant.waba_id);
    let sk = keys::waba_template(&campaign.template_name, &campaign.template_language);
    let item = db
        .client
        .get_item()
        .table_name(&db.table)
        .set_key(Some(key(pk, sk)))
        .send()
        .await
        .map_err(PlatformError::database)?
        .item;
    let template = format!(
        "template {} ({})",
        campaign.template_name, campaign.template_language
    );
    match item.as_ref().and_then(|item| text(item, "status")) {
        Some("APPROVED") => Ok(item
            .as_ref()
            .and_then(|item| text(item, "category"))
            .map(str::to_owned)),
        Some(status) => Err(PlatformError::Refused(format!(
            "the {template} is {status} at WhatsApp, not APPROVED"
        ))),
        None => Err(PlatformError::Refused(format!(
            "the {template} is not known as approved for this WhatsApp account"
        ))),
    }
}

/// What a transition writes besides the state.
#[derive(Debug, Clone, Default)]
pub struct Note {
    /// A rejection's or a pause's reason.
    pub reason: Option<String>,
}

/// Moves the campaign along its lifecycle: submit, approve (which also schedules or starts
/// it), reject, pause, resume, cancel; and, for the sending system
/// ([`Actor::System`]), start a scheduled campaign, pause one on WhatsApp's signals, finish
/// one. Checks the actor's rights, the state, the flag (for all but pause, cancel and
/// finish) and, on submit, the template and the audience.
pub async fn transition(
    db: &Db,
    tenant: &str,
    id: &str,
    actor: Actor<'_>,
    operation: Operation,
    note: &Note,
    now: DateTime<Utc>,
) -> Result<Campaign, PlatformError> {
    let current = get(db, tenant, id).await?;
    campaign::may(actor, &current.authorship(), operation).map_err(denied)?;
    let mut to = campaign::next_state(current.state, operation).map_err(denied)?;
    let stopping = matches!(
        operation,
        Operation::Pause | Operation::Cancel | Operation::Finish
    );
    let tenant_config = if stopping {
        None
    } else {
        Some(enabled_tenant(db, tenant).await?)
    };
    let reason = note
        .reason
        .as_deref()
        .map(str::trim)
        .filter(|r| !r.is_empty());
    if reason.is_some_and(|r| r.chars().count() > MAX_REASON) {
        return Err(PlatformError::invalid(
            "/reason",
            format!("at most {MAX_REASON} characters"),
        ));
    }
    let mut sets: Vec<(&str, AttributeValue)> = Vec::new();
    let mut removes: Vec<&str> = Vec::new();
    // When the dispatcher should queue its recipients (approval, resume).
    let mut due: Option<DateTime<Utc>> = None;
    let mut window_restarts = false;
    match operation {
        Operation::Submit => {
            match current.audience_size {
                Some(size) if size > 0 => {}
                _ => {
                    return Err(PlatformError::Refused(
                        "the campaign has no audience: import one first".into(),
                    ));
                }
            }
            let config = tenant_config.as_ref().expect("read above");
            if let Some(category) = check_template(db, config, &current).await? {
                sets.push(("template_category", s(category)));
            }
            sets.push(("submitted_by", s(actor.id())));
            sets.push(("submitted_at", n(now.timestamp())));
        }
        Operation::Approve => {
            let start_in_future = current.start_at.is_some_and(|at| at > now);
            to = campaign::next_state(to, Operation::Schedule { start_in_future })
                .map_err(denied)?;
            sets.push(("decided_by", s(actor.id())));
            sets.push(("decided_at", n(now.timestamp())));
            if to == State::Running {
                sets.extend(starting(&current, now));
            }
            due = Some(current.start_at.filter(|_| start_in_future).unwrap_or(now));
        }
        Operation::Reject => {
            let reason = reason.ok_or_else(|| PlatformError::invalid("/reason", "required"))?;
            sets.push(("decided_by", s(actor.id())));
            sets.push(("decided_at", n(now.timestamp())));
            sets.push(("reject_reason", s(reason)));
        }
        Operation::Pause => {
            sets.push((
                "paused_reason",
                s(reason.unwrap_or("paused by a person or system of the tenant")),
            ));
            sets.push(("paused_by", s(actor.id())));
        }
        Operation::Resume => {
            removes.extend(["paused_reason", "paused_by"]);
            // Signals before the resume were seen by the person resuming, and the
            // failure rate starts again: neither pauses it again at once.
            sets.push(("started_at", n(now.timestamp())));
            window_restarts = true;
            due = Some(now);
        }
        Operation::Cancel => {
            sets.push(("cancelled_by", s(actor.id())));
            sets.push(("cancelled_at", n(now.timestamp())));
        }
        Operation::Start => sets.push(("started_at", n(now.timestamp()))),
        Operation::Finish => sets.push(("finished_at", n(now.timestamp()))),
        Operation::Edit | Operation::Import | Operation::Schedule { .. } => {
            return Err(PlatformError::Conflict(format!(
                "{operation} is not a transition of this call"
            )));
        }
    }
    let mut names = HashMap::from([("#state".to_owned(), "state".to_owned())]);
    let mut values = HashMap::from([
        (":version".to_owned(), n(current.version)),
        (":one".to_owned(), n(1)),
        (":to".to_owned(), s(to.as_str())),
    ]);
    let mut expression = "SET #state = :to, version = version + :one".to_owned();
    for (field, value) in sets {
        names.insert(format!("#{field}"), field.to_owned());
        values.insert(format!(":{field}"), value);
        expression.push_str(&format!(", #{field} = :{field}"));
    }
    if window_restarts {
        values.insert(":zero".to_owned(), n(0));
        expression.push_str(
            ", window_done = if_not_exists(n_done, :zero), window_failed = if_not_exists(n_failed, :zero)",
        );
    }
    if let Some(at) = due {
        // Before the move: a due item whose campaign did not move is dropped by the
        // dispatcher, a moved campaign without one would never send.
        write_due(db, tenant, id, at).await?;
    }
    if !removes.is_empty() {
        for field in &removes {
            names.insert(format!("#{field}"), (*field).to_owned());
        }
        let fields: Vec<_> = removes.iter().map(|field| format!("#{field}")).collect();
        expression.push_str(&format!(" REMOVE {}", fields.join(", ")));
    }
    let updated = db
        .client
        .update_item()
        .table_name(&db.table)
        .set_key(Some(key(campaign_pk(tenant), campaign_sk(id))))
        .update_expression(expression)
        .condition_expression("version = :version")
        .set_expression_attribute_names(Some(names))
        .set_expression_attribute_values(Some(values))
        .return_values(aws_sdk_dynamodb::types::ReturnValue::AllNew)
        .send()
        .await;
    let item = match updated {
        Ok(output) => output.attributes.unwrap_or_default(),
        Err(error) if is_conditional_failure(&error) => return Err(changed_meanwhile()),
        Err(error) => return Err(PlatformError::database(error)),
    };
    let mut detail = serde_json::json!({"from": current.state, "to": to});
    if let Some(reason) = reason {
        detail["reason"] = reason.into();
    }
    record(
        db,
        tenant,
        &actor.id(),
        &format!("campaign.{}", operation.as_str()),
        id,
        detail,
        now,
    )
    .await?;
    tracing::info!(campaign = id, from = %current.state, to = %to, "campaign moved");
    from_item(&item)
}

/// What a campaign starting now writes: when, and how many recipients it will count.
fn starting(current: &Campaign, now: DateTime<Utc>) -> [(&'static str, AttributeValue); 2] {
    [
        ("started_at", n(now.timestamp())),
        ("n_queued", n(current.audience_size.unwrap_or(0))),
    ]
}

/// The dispatcher's `CAMPAIGNS_DUE` item for the campaign at `at`.
async fn write_due(
    db: &Db,
    tenant: &str,
    id: &str,
    at: DateTime<Utc>,
) -> Result<(), PlatformError> {
    let item = key(
        due_pk().to_owned(),
        campaign::due_key(at.timestamp(), tenant, id),
    );
    db.client
        .put_item()
        .table_name(&db.table)
        .set_item(Some(item))
        .send()
        .await
        .map_err(PlatformError::database)?;
    Ok(())
}

/// One row of an audience as read: a recipient, a row left out, or the end of a file that
/// cannot be read.
pub type Row = Result<Result<Recipient, Rejected>, AudienceError>;

/// What an import did.
#[derive(Debug, Clone, PartialEq, Serialize)]
pub struct Imported {
    pub campaign: Campaign,
    /// Recipients written.
    pub audience_size: u64,
    /// Customers left out for their opt-out or erasure.
    pub suppressed: u64,
    #[serde(flatten)]
    pub report: Report,
}

/// Every hash a customer can be suppressed under: opted out (`OPTOUT#<pn>`) or erased
/// (the erasures' tracking items name the customer by the same hash).
async fn suppression(db: &Db, tenant: &str) -> Result<HashSet<String>, PlatformError> {
    let mut hashes = HashSet::new();
    let mut start = None;
    loop {
        let output = db
            .client
            .query()
            .table_name(&db.table)
            .key_condition_expression("#pk = :pk")
            .expression_attribute_names("#pk", PK)
            .expression_attribute_names("#sk", SK)
            .expression_attribute_values(":pk", s(keys::suppression(tenant)))
            .projection_expression("#sk")
            .set_exclusive_start_key(start)
            .send()
            .await
            .map_err(PlatformError::database)?;
        hashes.extend(
            output
                .items()
                .iter()
                .filter_map(|i| text(i, SK).map(str::to_owned)),
        );
        start = output.last_evaluated_key;
        if start.is_none() {
            break;
        }
    }
    let mut start = None;
    loop {
        let output = db
            .client
            .query()
            .table_name(&db.table)
            .key_condition_expression("#pk = :pk AND begins_with(#sk, :era)")
            .expression_attribute_names("#pk", PK)
            .expression_attribute_names("#sk", SK)
            .expression_attribute_names("#kind", "kind")
            .expression_attribute_values(":pk", s(keys::tracking(tenant)))
            .expression_attribute_values(":era", s(super::rights::ERASURE_PREFIX))
            .expression_attribute_values(":erase", s("erase"))
            .filter_expression("#kind = :erase")
            .projection_expression("customer_hash")
            .set_exclusive_start_key(start)
            .send()
            .await
            .map_err(PlatformError::database)?;
        hashes.extend(
            output
                .items()
                .iter()
                .filter_map(|i| text(i, "customer_hash").map(str::to_owned)),
        );
        start = output.last_evaluated_key;
        if start.is_none() {
            break;
        }
    }
    Ok(hashes)
}

async fn write_batch(db: &Db, mut requests: Vec<WriteRequest>) -> Result<(), PlatformError> {
    let mut attempt = 0u32;
    while !requests.is_empty() {
        if attempt > 0 {
            // Throttled: back off before retrying what was not written.
            let wait = 50u64 * 2u64.pow(attempt.min(6));
            tokio::time::sleep(StdDuration::from_millis(wait + fastrand::u64(0..wait))).await;
        }
        if attempt >= 10 {
            return Err(PlatformError::Database(
                "recipients could not be written: the table kept throttling".into(),
            ));
        }
        let output = db
            .client
            .batch_write_item()
            .request_items(&db.table, requests)
            .send()
            .await
            .map_err(PlatformError::database)?;
        requests = output
            .unprocessed_items
            .and_then(|mut unprocessed| unprocessed.remove(&db.table))
            .unwrap_or_default();
        attempt += 1;
    }
    Ok(())
}

/// Frees a claimed import so it can be tried again.
async fn release(db: &Db, tenant: &str, id: &str) {
    let released = db
        .client
        .update_item()
        .table_name(&db.table)
        .set_key(Some(key(campaign_pk(tenant), campaign_sk(id))))
        .update_expression("REMOVE importing_at")
        .send()
        .await;
    if let Err(error) = released {
        tracing::error!(campaign = id, error = %PlatformError::database(error), "an import could not be released");
    }
}

/// Imports a draft's audience, once: recipients in seq order from 1, opted-out and erased
/// customers (either ninth-digit form) counted and left out, rows left out reported. The
/// campaign is claimed first (`importing_at`), so a second import or an edit meanwhile is
/// refused; a failed import releases it (recipients written past the new size are never
/// read: the dispatch stops at `audience_size`).
///
/// `current` is the campaign as read when the rows' parser was given its parameters: the
/// claim holds only at that version, so an edit in between is a conflict.
pub async fn import_audience(
    db: &Db,
    tenant: &str,
    current: &Campaign,
    actor: Actor<'_>,
    rows: impl Stream<Item = Row> + Unpin,
    now: DateTime<Utc>,
) -> Result<Imported, PlatformError> {
    let id = current.id.as_str();
    campaign::may(actor, &current.authorship(), Operation::Import).map_err(denied)?;
    campaign::next_state(current.state, Operation::Import).map_err(denied)?;
    let config = enabled_tenant(db, tenant).await?;
    if current.audience_size.is_some() {
        return Err(PlatformError::Conflict(
            "the campaign has its audience already: create a new campaign for another".into(),
        ));
    }
    let claimed = db
        .client
        .update_item()
        .table_name(&db.table)
        .set_key(Some(key(campaign_pk(tenant), campaign_sk(id))))
        .update_expression("SET importing_at = :now, version = version + :one")
        .condition_expression(
            "version = :version AND #state = :draft AND attribute_not_exists(audience_size) AND attribute_not_exists(importing_at)",
        )
        .expression_attribute_names("#state", "state")
        .expression_attribute_values(":now", n(now.timestamp()))
        .expression_attribute_values(":one", n(1))
        .expression_attribute_values(":version", n(current.version))
        .expression_attribute_values(":draft", s(State::Draft.as_str()))
        .send()
        .await;
    match claimed {
        Ok(_) => {}
        Err(error) if is_conditional_failure(&error) => {
            return Err(PlatformError::Conflict(
                "the campaign changed meanwhile or another import is running".into(),
            ));
        }
        Err(error) => return Err(PlatformError::database(error)),
    }
    let result = write_recipients(db, tenant, id, &config, rows, now).await;
    let (audience_size, suppressed, report) = match result {
        Ok(done) => done,
        Err(error) => {
            release(db, tenant, id).await;
            return Err(error);
        }
    };
    let updated = db
        .client
        .update_item()
        .table_name(&db.table)
        .set_key(Some(key(campaign_pk(tenant), campaign_sk(id))))
        .update_expression(
            "SET audience_size = :size, suppressed = :suppressed, bad_rows = :bad, version = version + :one REMOVE importing_at",
        )
        .condition_expression("version = :version")
        .expression_attribute_values(":size", n(audience_size))
        .expression_attribute_values(":suppressed", n(suppressed))
        .expression_attribute_values(":bad", n(report.bad_rows))
        .expression_attribute_values(":one", n(1))
        .expression_attribute_values(":version", n(current.version + 1))
        .return_values(aws_sdk_dynamodb::types::ReturnValue::AllNew)
        .send()
        .await;
    let item = match updated {
        Ok(output) => output.attributes.unwrap_or_default(),
        Err(error) if is_conditional_failure(&error) => return Err(changed_meanwhile()),
        Err(error) => return Err(PlatformError::database(error)),
    };
    record(
        db,
        tenant,
        &actor.id(),
        "campaign.audience",
        id,
        serde_json::json!({
            "audience_size": audience_size,
            "suppressed": suppressed,
            "bad_rows": report.bad_rows,
            "duplicates": report.duplicates,
        }),
        now,
    )
    .await?;
    Ok(Imported {
        campaign: from_item(&item)?,
        audience_size,
        suppressed,
        report,
    })
}

async fn write_recipients(
    db: &Db,
    tenant: &str,
    id: &str,
    config: &Tenant,
    mut rows: impl Stream<Item = Row> + Unpin,
    now: DateTime<Utc>,
) -> Result<(u64, u64, Report), PlatformError> {
    let suppressed_hashes = suppression(db, tenant).await?;
    let expires_at = (now + Duration::days(i64::from(config.retention_days))).timestamp();
    let pk = recipients_pk(tenant, id);
    let mut report = Report::default();
    let mut suppressed = 0u64;
    let mut seq = 0u64;
    let mut batches: Vec<Vec<WriteRequest>> = Vec::new();
    let mut batch: Vec<WriteRequest> = Vec::with_capacity(BATCH);
    let flush = |batches: Vec<Vec<WriteRequest>>| async move {
        futures::future::try_join_all(batches.into_iter().map(|batch| write_batch(db, batch)))
            .await
            .map(|_| ())
    };
    while let Some(row) = rows.next().await {
        let recipient = match row {
            Ok(Ok(recipient)) => recipient,
            Ok(Err(rejected)) => {
                report.reject(rejected);
                continue;
            }
            Err(error) => {
                return Err(PlatformError::invalid("/audience", error.to_string()));
            }
        };
        let opted_out = recipient
            .number
            .variants()
            .iter()
            .any(|variant| suppressed_hashes.contains(&keys::customer_hash(tenant, variant)));
        if opted_out {
            suppressed += 1;
            continue;
        }
        seq += 1;
        if seq > MAX_AUDIENCE {
            return Err(PlatformError::invalid(
                "/audience",
                format!("at most {MAX_AUDIENCE} recipients"),
            ));
        }
        report.accepted += 1;
        let mut item = key(
            pk.clone(),
            recipient_sk(u32::try_from(seq).expect("at most MAX_AUDIENCE recipients")),
        );
        item.extend([
            ("customer".to_owned(), s(&recipient.number.digits)),
            (
                "params".to_owned(),
                s(serde_json::to_string(&recipient.params).expect("strings serialise")),
            ),
            ("state".to_owned(), s("pending")),
            (EXPIRES_AT.to_owned(), n(expires_at)),
        ]);
        let put = PutRequest::builder()
            .set_item(Some(item))
            .build()
            .expect("a put with its item");
        batch.push(WriteRequest::builder().put_request(put).build());
        if batch.len() == BATCH {
            batches.push(std::mem::replace(&mut batch, Vec::with_capacity(BATCH)));
            if batches.len() == BATCHES_IN_FLIGHT {
                flush(std::mem::take(&mut batches)).await?;
            }
        }
    }
    if !batch.is_empty() {
        batches.push(batch);
    }
    flush(batches).await?;
    Ok((seq, suppressed, report))
}

/// A CSV audience read on a blocking thread (the parser reads a `Read`), its rows handed
/// over as they are parsed.
pub fn csv_rows<R: std::io::Read + Send + 'static>(
    reader: R,
    parameters: Vec<Parameter>,
) -> impl Stream<Item = Row> + Unpin {
    let (sender, receiver) = tokio::sync::mpsc::channel::<Row>(1024);
    tokio::task::spawn_blocking(move || {
        let rows = match campaign::audience::CsvAudience::new(reader, &parameters) {
            Ok(rows) => rows,
            Err(error) => {
                let _ = sender.blocking_send(Err(error));
                return;
            }
        };
        for row in rows {
            let end = row.is_err();
            if sender.blocking_send(row).is_err() || end {
                return;
            }
        }
    });
    Box::pin(futures::stream::unfold(
        receiver,
        |mut receiver| async move { receiver.recv().await.map(|row| (row, receiver)) },
    ))
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn ids_have_their_shape_and_sort_by_time() {
        let earlier = new_id("2026-12-01T10:00:00Z".parse().unwrap());
        let later = new_id("2026-12-01T10:00:00.001Z".parse().unwrap());
        assert!(is_id(&earlier) && is_id(&later), "{earlier} {later}");
        assert!(earlier < later);
        assert_ne!(earlier, new_id("2026-12-01T10:00:00Z".parse().unwrap()));
        assert!(!is_id("cmp_short"));
        assert!(!is_id(&earlier.replace("cmp_", "snd_")));
    }
}
