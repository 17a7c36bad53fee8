//! The command line (clap derive). Parsing only: what each command does lives in its module.

use std::path::PathBuf;

use clap::{ArgGroup, Args, Parser, Subcommand};

use crate::error::OpsError;

#[derive(Debug, Parser)]
#[command(
    name = "ops",
    version,
    about = "Operators' CLI of the WhatsApp service desk",
    long_about = "Operators' CLI of the WhatsApp service desk: tenants, tenant secrets, parked \
                  messages, the inbound DLQ, number onboarding, the AI attendant's spend and \
                  event subscriptions.\n\n\
                  AWS access uses the usual chain (AWS_PROFILE, AWS_REGION, AWS_ENDPOINT_URL, ...)."
)]
pub struct Cli {
    #[command(flatten)]
    pub globals: Globals,
    #[command(subcommand)]
    pub command: Command,
}

/// Where the stack's resources are; template.yaml's outputs name them.
#[derive(Debug, Clone, Args)]
pub struct Globals {
    /// The stack's DynamoDB table (output TableName)
    #[arg(long, env = "TABLE_NAME", global = true)]
    pub table: Option<String>,
    /// The stack name; secrets are named <stack>/app, <stack>/ai, <stack>/tenants/<phone_number_id>,
    /// <stack>/desk/<phone_number_id> and <stack>/hooks/<phone_number_id>
    #[arg(
        long,
        env = "STACK_NAME",
        default_value = "whatsapp-desk",
        global = true
    )]
    pub stack: String,
    /// The inbound FIFO queue (output InboundQueueUrl)
    #[arg(long, env = "INBOUND_QUEUE_URL", global = true)]
    pub inbound_queue_url: Option<String>,
    /// The inbound dead-letter queue (output InboundDeadLetterQueueUrl)
    #[arg(long = "dlq-url", env = "INBOUND_DLQ_URL", global = true)]
    pub dlq_url: Option<String>,
}

impl Globals {
    pub fn table(&self) -> Result<&str, OpsError> {
        present(&self.table, "--table", "TABLE_NAME")
    }

    pub fn inbound_queue_url(&self) -> Result<&str, OpsError> {
        present(
            &self.inbound_queue_url,
            "--inbound-queue-url",
            "INBOUND_QUEUE_URL",
        )
    }

    pub fn dlq_url(&self) -> Result<&str, OpsError> {
        present(&self.dlq_url, "--dlq-url", "INBOUND_DLQ_URL")
    }
}

fn present<'a>(
    value: &'a Option<String>,
    flag: &'static str,
    env: &'static str,
) -> Result<&'a str, OpsError> {
    match value.as_deref().map(str::trim) {
        Some(value) if !value.is_empty() => Ok(value),
        _ => Err(OpsError::Missing { flag, env }),
    }
}

#[derive(Debug, Subcommand)]
pub enum Command {
    /// Tenants: validate and store files, list, show, versions, rollback, disable, enable;
    /// and each tenant's secret
    #[command(subcommand, visible_alias = "tenants")]
    Tenant(TenantCommand),
    /// Messages parked because their number had no tenant yet
    #[command(subcommand)]
    Parked(ParkedCommand),
    /// The inbound queue's dead-letter queue
    #[command(subcommand)]
    Dlq(DlqCommand),
    /// The stack's secrets
    #[command(subcommand)]
    Secrets(SecretsCommand),
    /// Subscribe the app to a WhatsApp Business Account and register the number (Graph API)
    Onboard(OnboardArgs),
    /// Platform API keys: the provider's (default) or a tenant's (--tenant)
    #[command(subcommand)]
    Keys(KeysCommand),
    /// People: platform admins (default) or a tenant's members (--tenant) with a role
    #[command(subcommand)]
    Members(MembersCommand),
    /// The AI attendant's spend per conversation in a month: requests, tokens (cache writes and reads apart), cost
    AiUsage(AiUsageArgs),
    /// A tenant's daily reports: conversations, AI turns and cost, response and waiting times, SLA alerts, NPS
    Report(ReportArgs),
    /// A customer's data rights (LGPD): export everything stored about a customer, erase it
    #[command(subcommand)]
    Customers(CustomersCommand),
    /// A tenant's campaigns: list, show, and stop one (pause, cancel)
    #[command(subcommand, visible_alias = "campaign")]
    Campaigns(CampaignsCommand),
    /// A tenant's message templates as Meta last said them: list, or sync from Graph's list
    #[command(subcommand)]
    Templates(TemplatesCommand),
    /// A tenant's event subscriptions (signed deliveries to n8n, Typebot, its systems); their
    /// signing secrets are in <stack>/hooks/<phone_number_id>
    #[command(subcommand, visible_alias = "hook")]
    Hooks(HooksCommand),
}

#[derive(Debug, Subcommand)]
pub enum HooksCommand {
    /// id, state, events, URL and delivery health: tab-separated, one subscription a line
    List {
        #[arg(long, value_name = "PHONE_NUMBER_ID")]
        tenant: String,
    },
    /// Subscribe an https URL to event types; prints the signing secret (shown only now)
    Create {
        #[arg(long, value_name = "PHONE_NUMBER_ID")]
        tenant: String,
        /// https only, no user name or password, not a private, loopback or link-local address
        #[arg(long)]
        url: String,
        /// message.received, message.sent, message.status, conversation.started,
        /// conversation.handed_over, conversation.assigned, conversation.closed, nps.answered,
        /// customer.opted_out, customer.opted_in, campaign.state_changed; repeat for several
        #[arg(long = "event", value_name = "TYPE", required = true)]
        events: Vec<String>,
        /// What it is for (at most 200 characters)
        #[arg(long)]
        description: Option<String>,
        /// Create it disabled
        #[arg(long)]
        disabled: bool,
    },
    /// Change what is given; --enable starts deliveries again and clears why it was disabled
    #[command(group(ArgGroup::new("change").required(true).multiple(true)
        .args(["url", "events", "description", "enable", "disable"])))]
    Update {
        #[arg(long, value_name = "PHONE_NUMBER_ID")]
        tenant: String,
        #[arg(value_name = "HOOK_ID")]
        id: String,
        #[arg(long)]
        url: Option<String>,
        /// The whole new list of event types; repeat for several
        #[arg(long = "event", value_name = "TYPE")]
        events: Option<Vec<String>>,
        /// The new description (an empty one clears it)
        #[arg(long)]
        description: Option<String>,
        #[arg(long, conflicts_with = "disable")]
        enable: bool,
        #[arg(long)]
        disable: bool,
    },
    /// Make a new signing secret and print it (shown only now); the old one stops signing
    RotateSecret {
        #[arg(long, value_name = "PHONE_NUMBER_ID")]
        tenant: String,
        #[arg(value_name = "HOOK_ID")]
        id: String,
    },
    /// Delete the subscription and its signing secret
    Delete {
        #[arg(long, value_name = "PHONE_NUMBER_ID")]
        tenant: String,
        #[arg(value_name = "HOOK_ID")]
        id: String,
    },
}

#[derive(Debug, Subcommand)]
pub enum CampaignsCommand {
    /// One line per campaign, newest first: id, state, name, template, audience, created
    List {
        #[arg(long, value_name = "PHONE_NUMBER_ID")]
        tenant: String,
        /// Only campaigns in this state (draft, submitted, running, paused, ...)
        #[arg(long)]
        state: Option<String>,
    },
    /// The campaign as JSON, with its counters
    Show {
        #[arg(long, value_name = "PHONE_NUMBER_ID")]
        tenant: String,
        #[arg(value_name = "CAMPAIGN_ID")]
        id: String,
    },
    /// Pause a running campaign (a person of the tenant resumes it)
    Pause {
        #[arg(long, value_name = "PHONE_NUMBER_ID")]
        tenant: String,
        #[arg(value_name = "CAMPAIGN_ID")]
        id: String,
        /// Why, kept with the campaign
        #[arg(long)]
        reason: String,
    },
    /// Cancel a campaign that has not ended
    Cancel {
        #[arg(long, value_name = "PHONE_NUMBER_ID")]
        tenant: String,
        #[arg(value_name = "CAMPAIGN_ID")]
        id: String,
    },
}

#[derive(Debug, Subcommand)]
pub enum TemplatesCommand {
    /// name, language, status, category, quality: tab-separated, one template a line
    List {
        /// The tenant's phone_number_id
        #[arg(long, value_name = "PHONE_NUMBER_ID")]
        tenant: String,
    },
    /// Read the account's templates from Graph with the tenant's token, store them, list them
    Sync {
        /// The tenant's phone_number_id
        #[arg(long, value_name = "PHONE_NUMBER_ID")]
        tenant: String,
    },
}

#[derive(Debug, Args)]
pub struct ReportArgs {
    /// The tenant's phone_number_id
    #[arg(long, value_name = "PHONE_NUMBER_ID")]
    pub tenant: String,
    /// The first day, YYYY-MM-DD (the tenant's local date)
    #[arg(long, value_name = "YYYY-MM-DD")]
    pub from: String,
    /// The last day, YYYY-MM-DD (at most 92 days after --from)
    #[arg(long, value_name = "YYYY-MM-DD")]
    pub to: String,
    #[arg(long, value_enum, default_value_t = ReportFormat::Table)]
    pub format: ReportFormat,
}

#[derive(Debug, Clone, Copy, PartialEq, Eq, clap::ValueEnum)]
pub enum ReportFormat {
    /// Tab-separated, one line per day
    Table,
    /// The days as the API returns them
    Json,
}

#[derive(Debug, Subcommand)]
pub enum CustomersCommand {
    /// Print everything stored about the customer as JSON (recorded in the tenant's audit log)
    Export(CustomerArgs),
    /// Erase everything stored about the customer, and the desk contact; prints the tracking id
    Erase {
        #[command(flatten)]
        customer: CustomerArgs,
        /// Wait until the worker has done it and report what was removed
        #[arg(long)]
        wait: bool,
    },
    /// An erasure's state as JSON: pending, or done with what it removed
    Erasure {
        #[arg(long, value_name = "PHONE_NUMBER_ID")]
        tenant: String,
        #[arg(value_name = "ID")]
        id: String,
    },
}

#[derive(Debug, Args)]
pub struct CustomerArgs {
    /// The tenant's phone_number_id
    #[arg(long, value_name = "PHONE_NUMBER_ID")]
    pub tenant: String,
    /// The customer's WhatsApp id (the number in digits, no +)
    #[arg(long, value_name = "WA_ID")]
    pub customer: String,
}

#[derive(Debug, Subcommand)]
pub enum KeysCommand {
    /// Create a key and print it (shown only this once; stored as a hash)
    Create {
        /// The tenant the key is for; without it, a provider key
        #[arg(long, value_name = "PHONE_NUMBER_ID")]
        tenant: Option<String>,
        /// What the key is for
        #[arg(long)]
        name: String,
        /// read, send, admin, campaigns:write or hooks:manage; repeat for several
        #[arg(long = "scope", required = true)]
        scopes: Vec<String>,
    },
    /// List keys by id, with scopes, state and last use
    List {
        #[arg(long, value_name = "PHONE_NUMBER_ID")]
        tenant: Option<String>,
    },
    /// Revoke a key at once
    Revoke {
        #[arg(long, value_name = "PHONE_NUMBER_ID")]
        tenant: Option<String>,
        #[arg(value_name = "KEY_ID")]
        id: String,
    },
}

#[derive(Debug, Subcommand)]
pub enum MembersCommand {
    /// Add a person by e-mail (invited when the user pool does not know it), or change a role
    Add {
        /// The tenant; without it, the person becomes a platform admin
        #[arg(long, value_name = "PHONE_NUMBER_ID")]
        tenant: Option<String>,
        /// agent, supervisor or admin (tenant members only)
        #[arg(long, default_value = "agent")]
        role: String,
        /// The stack's Cognito user pool (output UserPoolId)
        #[arg(long, env = "COGNITO_USER_POOL_ID")]
        user_pool_id: String,
        email: String,
    },
    List {
        #[arg(long, value_name = "PHONE_NUMBER_ID")]
        tenant: Option<String>,
    },
    /// Remove a person (by Cognito sub) from the tenant or the platform admins
    Remove {
        #[arg(long, value_name = "PHONE_NUMBER_ID")]
        tenant: Option<String>,
        sub: String,
    },
}

#[derive(Debug, Args)]
pub struct AiUsageArgs {
    #[arg(value_name = "PHONE_NUMBER_ID")]
    pub phone_number_id: String,
    /// The month the conversations started, YYYY-MM (default: this month, UTC)
    #[arg(long, value_name = "YYYY-MM")]
    pub month: Option<String>,
    /// The model's input price, USD per million tokens (with --output-price: adds costs;
    /// cache writes cost 1.25 times it, cache reads 0.1 times)
    #[arg(long, value_name = "USD", requires = "output_price")]
    pub input_price: Option<f64>,
    /// The model's output price, USD per million tokens
    #[arg(long, value_name = "USD", requires = "input_price")]
    pub output_price: Option<f64>,
}

#[derive(Debug, Subcommand)]
pub enum TenantCommand {
    /// Parse and validate tenant files (no AWS access)
    Validate {
        #[arg(required = true, value_name = "FILE")]
        files: Vec<PathBuf>,
    },
    /// Validate tenant files and store them, each changed one as its tenant's next version;
    /// stores nothing when any file is invalid
    Put {
        #[arg(required = true, value_name = "FILE")]
        files: Vec<PathBuf>,
    },
    /// List stored tenants: phone_number_id, name, updated_at, version, enabled or disabled
    List,
    /// Print a stored tenant's config as JSON
    Show {
        #[arg(value_name = "PHONE_NUMBER_ID")]
        phone_number_id: String,
        /// A stored version instead of the current config
        #[arg(long, value_name = "N")]
        version: Option<u64>,
    },
    /// List a tenant's stored versions, newest first: version, when, by whom, name
    Versions {
        #[arg(value_name = "PHONE_NUMBER_ID")]
        phone_number_id: String,
    },
    /// Store an earlier version's config again, as the next version
    Rollback {
        #[arg(value_name = "PHONE_NUMBER_ID")]
        phone_number_id: String,
        #[arg(value_name = "VERSION")]
        version: u64,
        /// Refuse unless the tenant is still at this version (someone else may have changed it)
        #[arg(long, value_name = "N")]
        expected_version: Option<u64>,
    },
    /// Disable a tenant: its messages and desk events are parked (replayable once enabled),
    /// nothing is sent for it, the schedules skip it. Running functions notice within 60 s
    Disable {
        #[arg(value_name = "PHONE_NUMBER_ID")]
        phone_number_id: String,
    },
    /// Enable a disabled tenant (then `ops parked replay` what was parked meanwhile)
    Enable {
        #[arg(value_name = "PHONE_NUMBER_ID")]
        phone_number_id: String,
    },
    /// Set tokens in the tenant's secrets, keeping the keys not given: WhatsApp and Chatwoot
    /// tokens in <stack>/tenants/<phone_number_id> (the worker's), the desk token and
    /// Chatwoot's webhook secret in <stack>/desk/<phone_number_id> (the desk's). A value of
    /// `-` reads the token from stdin, which keeps it out of the shell history.
    Secret(SecretArgs),
}

#[derive(Debug, Args)]
#[command(group(
    ArgGroup::new("tokens")
        .required(true)
        .multiple(true)
        .args(["whatsapp_token", "chatwoot_token", "desk_token", "chatwoot_webhook_secret"])
))]
pub struct SecretArgs {
    #[arg(value_name = "PHONE_NUMBER_ID")]
    pub phone_number_id: String,
    /// The WhatsApp Cloud API access token (system user token)
    #[arg(long, value_name = "TOKEN")]
    pub whatsapp_token: Option<String>,
    /// The Chatwoot API access token
    #[arg(long, value_name = "TOKEN")]
    pub chatwoot_token: Option<String>,
    /// The token in the desk webhook URL Chatwoot calls (/desk/<number>/<token>): at least
    /// 32 random characters from A-Z a-z 0-9 - . _ ~, or `generate` to have one made and
    /// printed once
    #[arg(long, value_name = "TOKEN")]
    pub desk_token: Option<String>,
    /// Chatwoot's webhook signing secret: then X-Chatwoot-Signature is required too
    #[arg(long, value_name = "SECRET")]
    pub chatwoot_webhook_secret: Option<String>,
}

#[derive(Debug, Subcommand)]
pub enum SecretsCommand {
    /// Copy an existing stack's secrets from the earlier layout (the Anthropic key in
    /// <stack>/app, the desk's keys in <stack>/tenants/<pn>) into <stack>/ai and
    /// <stack>/desk/<pn>, never overwriting a value already there; safe to repeat. Prints
    /// secret and key names only.
    Migrate {
        /// Also remove the moved keys from the old secrets (once this version is deployed)
        #[arg(long)]
        remove_old: bool,
    },
}

#[derive(Debug, Subcommand)]
pub enum ParkedCommand {
    /// List the messages parked for a number, oldest first
    List {
        #[arg(value_name = "PHONE_NUMBER_ID")]
        phone_number_id: String,
    },
    /// Send the parked messages back to the inbound queue (the tenant must exist)
    Replay {
        #[arg(value_name = "PHONE_NUMBER_ID")]
        phone_number_id: String,
    },
}

#[derive(Debug, Subcommand)]
pub enum DlqCommand {
    /// Move messages from the DLQ back to the inbound queue, keeping group and dedup ids
    Redrive {
        /// Move at most this many messages
        #[arg(long, value_name = "N", value_parser = clap::value_parser!(u32).range(1..))]
        max: Option<u32>,
    },
}

#[derive(Debug, Args)]
pub struct OnboardArgs {
    #[arg(value_name = "PHONE_NUMBER_ID")]
    pub phone_number_id: String,
    /// The WhatsApp Business Account the number belongs to
    #[arg(long, value_name = "WABA_ID")]
    pub waba_id: String,
    /// The number's 6-digit two-step verification PIN (set to this value if it has none);
    /// Meta's register call requires it
    #[arg(long, value_name = "PIN", env = "WHATSAPP_PIN", hide_env_values = true)]
    pub pin: String,
}
