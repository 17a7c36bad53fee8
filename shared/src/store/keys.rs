//! The single-table layout (`TABLE_NAME`, keys `pk`/`sk`, TTL attribute `expires_at` in epoch
//! seconds). Every reader and writer builds keys here, so the layout lives in one place.
//!
//! | item | pk | sk |
//! | --- | --- | --- |
//! | tenant config (`config`: JSON, `version`, `disabled`, `hooks`) | `TENANT#<pn>` | `CONFIG` |
//! | an event subscription (`url`, `events`, `enabled`, its recent deliveries and failures; no secret) | `TENANT#<pn>` | `HOOK#<id>` |
//! | each stored version of it (`config`, `updated_at`/`_by`, `restored_from`) | `TENANT#<pn>` | `CONFIG#v<10 digits>` |
//! | session (`session`: JSON, `version`, `layout`, `state`; for the list `gsi1pk`, `gsi1sk`, `stage`, `department`) | `CONV#<pn>#<customer>` | `SESSION` |
//! | event record: transcript line and outbox (`at`, `kind`, `text`, `effects`, `done`, `sent`) | `CONV#<pn>#<customer>` | `EVT#<event key>` |
//! | outbound delivery status (written by the first status) | `OUT#<wamid>` | `STATUS` |
//! | message parked for an unknown tenant (`envelope`) | `PARKED#<pn>` | `<epoch ms>#<key>` |
//! | human queue entry (`customer`, `reason`, `told_position`) | `QUEUE#<pn>#<department>` | `<rank>#<entered epoch ms>#<customer>` |
//! | when an agent took a customer (wait estimate) | `TAKEN#<pn>#<department>` | `<epoch ms>#<customer>` |
//! | the desk conversation of a handoff | `CONV#<pn>#<customer>` | `DESK` |
//! | every tenant, for the schedules and the tenant list (no table scan) | `TENANTS` | `<pn>` |
//! | who wrote while closed, owed the opening follow-up (`until`) | `OPENING#<pn>` | `<customer>` |
//! | AI spend of one conversation (tokens, requests) | `AIUSAGE#<pn>#<yyyy-mm>` | `<started at>#<customer>` |
//! | a tenant's day in counters (`report::Tally`) | `REPORT#<pn>` | `DAY#<yyyy-mm-dd>` (local date) |
//! | a platform API request and who made it (`kind`, `requested_by`, `requested_at`; a send's `customer`, `request_hash`; an erasure's `customer_hash`, `done_at`, `removed_<kind>`) | `TRACK#<pn>` | `<tracking id>` |
//! | an erased event's key, hashed: a retry of it does nothing | `TOMB#<pn>` | `<sha256 hex of the event key>` |
//! | a customer erased, for the event deliveries queued before (`erased_at`; expires [`ERASED_KEPT_DAYS`] on) | `ERASED#<pn>` | [`erased_entry`] of the customer |
//! | one delivery attempt of a subscription's events (`entry`: JSON of `hooks::DeliveryEntry`, no customer data; expires [`HOOK_LOG_KEPT`] on) | `HOOKLOG#<pn>#<subscription id>` | [`hook_log_entry`]: `<RFC 3339 ms>#<event id>#<attempt>` |
//! | a customer on the tenant's suppression list, by number and by business-scoped user id (`since`, `source`: `words`, `meta`, `api`) | `OPTOUT#<pn>` | [`customer_hash`] of the id |
//! | a campaign send the customer's next conversation answers (`campaign_id`, `seq`, `sent_at`; `replied_at`, `opted_out_at` once counted) | `CAMPAIGN_REPLY#<pn>` | [`campaign_reply_entry`] of the id sent to |
//! | a template's latest status from Meta (`status`, `category`, `reason`, `at`; `quality`, `quality_at`) | `WABA#<waba_id>` | `TEMPLATE#<name>#<language>` |
//! | a number's latest quality event (`quality_event`, `messaging_limit`, `at`) | `WABA#<waba_id>` | `NUMBER#<display phone number digits>` |
//! | the account's latest update (`event`, `restriction`, `at`) | `WABA#<waba_id>` | `ACCOUNT` |
//! | an audit entry (`actor`, `action`, `target`, `detail`) | `AUDIT#<pn or PLATFORM>` | `<RFC 3339 ms>#<random hex>` |
//! | campaigns and their recipients, sending and pacing items | see [`crate::campaign`] | |
//!
//! Index `gsi1` (keys `gsi1pk`/`gsi1sk`, projecting `stage` and `department`) lists a
//! tenant's conversations: each session carries `gsi1pk = CONVS#<pn>` and `gsi1sk` = when
//! the conversation started (a number, epoch ms; the customer is in the session's `pk`).
//! Keys and projected attributes change only when the conversation starts or changes hands,
//! so most session writes leave the index alone (see the design notes, "The conversation
//! list").
//!
//! Every item but the tenant config, its versions, `TENANTS`, the suppression list (hashes
//! only: it must outlive retention and erasure) and the `WABA#` signals holds customer data
//! and carries `expires_at` (see the design notes, "Data that expires"); an erasure's tracking
//! item, the tombstones, the erased customers' items and the campaign reply pointers hold only
//! hashes (see "Data rights"); the hook delivery log holds no customer data and expires after
//! [`HOOK_LOG_KEPT`]. The report days hold no customer data and expire after
//! [`REPORT_KEPT_DAYS`].
//!
//! Written by earlier versions and still read (see `store::dynamodb`): the idempotency
//! record `IDEM#<key>`/`IDEM`, outbox items `OUTBOX#<key>#<seq>` and message log items
//! `MSG#<epoch ms>#<wamid>` in the conversation's partition.

pub const PK: &str = "pk";
pub const SK: &str = "sk";
pub const EXPIRES_AT: &str = "expires_at";
pub const TABLE_NAME: &str = "TABLE_NAME";

pub const CONFIG: &str = "CONFIG";
pub const SESSION: &str = "SESSION";
pub const STATUS: &str = "STATUS";
pub const IDEM: &str = "IDEM";
pub const DESK: &str = "DESK";
pub const TENANTS: &str = "TENANTS";
pub const MESSAGE_LOG_PREFIX: &str = "MSG#";
pub const EVENT_PREFIX: &str = "EVT#";
/// A tenant's configuration item: the tenant as JSON, its name, when it was stored.
pub const TENANT_CONFIG: &str = "config";
pub const TENANT_NAME: &str = "name";
pub const TENANT_UPDATED_AT: &str = "updated_at";
/// Who stored the version (an API principal, `ops:<user>`).
pub const TENANT_UPDATED_BY: &str = "updated_by";
/// The config's version, on the config item, its version items and `TENANTS`; absent on
/// a tenant stored before versions were kept (read as 0).
pub const TENANT_VERSION: &str = "version";
/// `true` on the config item (and `TENANTS`) while the provider has the tenant disabled.
pub const TENANT_DISABLED: &str = "disabled";
/// The tenant's enabled event subscriptions on its config item (`hooks::Subscribed` as
/// JSON), kept by the subscription routes beside the config the versions write.
pub const TENANT_HOOKS: &str = "hooks";
pub const HOOK_PREFIX: &str = "HOOK#";

/// An event subscription in the tenant's partition.
pub fn hook(subscription_id: &str) -> String {
    format!("{HOOK_PREFIX}{subscription_id}")
}

/// A subscription's delivery log: one item per attempt, newest last in key order.
pub fn hook_log(phone_number_id: &str, subscription_id: &str) -> String {
    format!("HOOKLOG#{phone_number_id}#{subscription_id}")
}

/// A delivery attempt's sort key: its time to the millisecond, the event and the attempt
/// (1 for the first), so two attempts never overwrite each other.
pub fn hook_log_entry(at: chrono::DateTime<chrono::Utc>, event_id: &str, attempt: u32) -> String {
    format!(
        "{}#{event_id}#{attempt}",
        at.to_rfc3339_opts(chrono::SecondsFormat::Millis, true)
    )
}

/// How long a delivery attempt's log item is kept.
pub const HOOK_LOG_KEPT: chrono::TimeDelta = chrono::TimeDelta::days(7);

/// The customers a tenant erased lately: the hook deliveries drop what was queued before.
pub fn erased(phone_number_id: &str) -> String {
    format!("ERASED#{phone_number_id}")
}

/// The erased customer's [`customer_hash`], of its longest form (a Brazilian mobile with
/// the ninth digit), so an event naming either form finds it.
pub fn erased_entry(phone_number_id: &str, customer: &str) -> String {
    customer_hash(phone_number_id, &campaign_reply_form(customer))
}

/// When the erasure ran, on its `ERASED#` item.
pub const ERASED_AT: &str = "erased_at";

/// How long an `ERASED#` item is kept: past the oldest event a delivery still sends
/// (`hooks::MAX_EVENT_AGE`, 3 days), by a day.
pub const ERASED_KEPT_DAYS: i64 = 4;
pub const TENANT_VERSION_PREFIX: &str = "CONFIG#v";
/// Sessions written since event records live in the conversation carry this `layout`.
pub const SESSION_LAYOUT: u32 = 2;

/// The conversation list's index and its key attributes.
pub const CONVERSATIONS_INDEX: &str = "gsi1";
pub const GSI1PK: &str = "gsi1pk";
pub const GSI1SK: &str = "gsi1sk";
/// The session's [`crate::engine::Stage`] and listed department, projected into the index.
pub const STAGE: &str = "stage";
pub const DEPARTMENT: &str = "department";

/// The index partition of a tenant's conversations.
pub fn conversations(phone_number_id: &str) -> String {
    format!("CONVS#{phone_number_id}")
}

pub fn tenant(phone_number_id: &str) -> String {
    format!("TENANT#{phone_number_id}")
}

/// A stored version of a tenant's config; zero-padded so the versions sort in order.
pub fn tenant_version(version: u64) -> String {
    format!("{TENANT_VERSION_PREFIX}{version:010}")
}

pub fn conversation(phone_number_id: &str, customer: &str) -> String {
    format!("CONV#{phone_number_id}#{customer}")
}

pub fn event(key: &str) -> String {
    format!("{EVENT_PREFIX}{key}")
}

pub fn outbox_prefix(event_key: &str) -> String {
    format!("OUTBOX#{event_key}#")
}

pub fn outbox(event_key: &str, sequence: usize) -> String {
    format!("{}{sequence:03}", outbox_prefix(event_key))
}

pub fn message_log(epoch_ms: i64, wamid: &str) -> String {
    format!("{MESSAGE_LOG_PREFIX}{epoch_ms:013}#{wamid}")
}

pub fn outbound(wamid: &str) -> String {
    format!("OUT#{wamid}")
}

pub fn idempotency(key: &str) -> String {
    format!("IDEM#{key}")
}

pub fn parked(phone_number_id: &str) -> String {
    format!("PARKED#{phone_number_id}")
}

pub fn parked_entry(epoch_ms: i64, key: &str) -> String {
    format!("{epoch_ms:013}#{key}")
}

pub fn human_queue(phone_number_id: &str, department: &str) -> String {
    format!("QUEUE#{phone_number_id}#{department}")
}

/// Priority first, then arrival: a query in key order is the order of service.
pub fn queue_entry(ticket: &crate::desk::Ticket, customer: &str) -> String {
    format!(
        "{}#{:013}#{customer}",
        ticket.priority.rank(),
        ticket.entered_at.timestamp_millis()
    )
}

pub fn opening(phone_number_id: &str) -> String {
    format!("OPENING#{phone_number_id}")
}

pub fn taken(phone_number_id: &str, department: &str) -> String {
    format!("TAKEN#{phone_number_id}#{department}")
}

pub fn taken_entry(epoch_ms: i64, customer: &str) -> String {
    format!("{epoch_ms:013}#{customer}")
}

/// One partition per tenant and month (of the conversation's start): a month's report is
/// one query.
pub fn ai_usage(phone_number_id: &str, month: &str) -> String {
    format!("AIUSAGE#{phone_number_id}#{month}")
}

pub fn ai_usage_entry(started_at: &chrono::DateTime<chrono::Utc>, customer: &str) -> String {
    format!(
        "{}#{customer}",
        started_at.to_rfc3339_opts(chrono::SecondsFormat::Millis, true)
    )
}

/// How long a report day is kept (from the day).
pub const REPORT_KEPT_DAYS: i64 = 400;

/// One partition per tenant: a range of days is one query.
pub fn report(phone_number_id: &str) -> String {
    format!("REPORT#{phone_number_id}")
}

pub fn report_day(day: chrono::NaiveDate) -> String {
    format!("DAY#{}", day.format("%Y-%m-%d"))
}

/// The platform API's requests of one tenant (sends, erasures), by tracking id.
pub fn tracking(phone_number_id: &str) -> String {
    format!("TRACK#{phone_number_id}")
}

pub fn tombstone(phone_number_id: &str) -> String {
    format!("TOMB#{phone_number_id}")
}

/// The tombstone's sort key: the event key hashed, never in clear.
pub fn tombstone_entry(event_key: &str) -> String {
    sha256_hex(event_key)
}

/// How long an audit entry is kept.
pub const AUDIT_KEPT: chrono::TimeDelta = chrono::TimeDelta::days(730);

/// An owner's audit log (`PLATFORM` or a tenant's number id).
pub fn audit(owner_key: &str) -> String {
    format!("AUDIT#{owner_key}")
}

/// An audit entry's sort key: its time to the millisecond, then random hex so entries of
/// one millisecond never overwrite each other.
pub fn audit_entry(at: chrono::DateTime<chrono::Utc>, nonce: u32) -> String {
    format!(
        "{}#{nonce:08x}",
        at.to_rfc3339_opts(chrono::SecondsFormat::Millis, true)
    )
}

/// A tenant's suppression list; its entries are [`customer_hash`]es.
pub fn suppression(phone_number_id: &str) -> String {
    format!("OPTOUT#{phone_number_id}")
}

/// The reply pointers of a number's campaign sends; entries are [`customer_hash`]es.
pub fn campaign_reply(phone_number_id: &str) -> String {
    format!("CAMPAIGN_REPLY#{phone_number_id}")
}

/// A reply pointer's sort key: the [`customer_hash`] of [`campaign_reply_form`].
pub fn campaign_reply_entry(phone_number_id: &str, customer: &str) -> String {
    customer_hash(phone_number_id, &campaign_reply_form(customer))
}

/// The customer's longest form, so a Brazilian mobile finds its reply pointer whether the
/// send or Meta's `from` had the ninth digit.
pub fn campaign_reply_form(customer: &str) -> String {
    crate::campaign::customer_forms(customer)
        .into_iter()
        .max_by_key(String::len)
        .unwrap_or_else(|| customer.to_owned())
}

/// What Meta said about a WhatsApp Business Account, its templates and numbers.
pub fn waba(waba_id: &str) -> String {
    format!("WABA#{waba_id}")
}

pub fn waba_template(name: &str, language: &str) -> String {
    format!("TEMPLATE#{name}#{language}")
}

/// Meta's number quality webhook names the number by its display digits only.
pub fn waba_number(display_phone_number: &str) -> String {
    format!("NUMBER#{display_phone_number}")
}

pub const WABA_ACCOUNT: &str = "ACCOUNT";

/// How an erasure names its customer: `sha256("<pn>:<customer>")` in hex.
pub fn customer_hash(phone_number_id: &str, customer: &str) -> String {
    sha256_hex(&format!("{phone_number_id}:{customer}"))
}

fn sha256_hex(text: &str) -> String {
    use sha2::Digest;
    hex::encode(sha2::Sha256::digest(text.as_bytes()))
}

#[cfg(test)]
mod tests {
    #[test]
    fn sort_keys_order_by_time_and_sequence() {
        assert!(super::message_log(999, "b") < super::message_log(1_000, "a"));
        assert!(super::outbox("w", 9) < super::outbox("w", 10));
        assert!(super::outbox("w", 0).starts_with(&super::outbox_prefix("w")));
        assert_eq!(super::tenant_version(1), "CONFIG#v0000000001");
        assert_eq!(
            super::campaign_reply_entry("1", "556181234567"),
            super::campaign_reply_entry("1", "5561981234567")
        );
        assert!(super::tenant_version(9) < super::tenant_version(10));
        let at = |t: &str| t.parse::<chrono::DateTime<chrono::Utc>>().unwrap();
        assert_eq!(
            super::hook_log_entry(at("2026-12-07T22:00:00.5Z"), "evt_1", 2),
            "2026-12-07T22:00:00.500Z#evt_1#2"
        );
        assert!(
            super::hook_log_entry(at("2026-12-07T22:00:00.999Z"), "evt_9", 9)
                < super::hook_log_entry(at("2026-12-07T22:00:01Z"), "evt_0", 1)
        );
        assert_eq!(
            super::erased_entry("1", "556181234567"),
            super::erased_entry("1", "5561981234567")
        );
        assert_ne!(
            super::erased_entry("1", "5561981234567"),
            super::erased_entry("2", "5561981234567")
        );
    }
}
