//! The operators' CLI of the WhatsApp service desk. `main` only parses the command line and
//! maps the outcome to an exit code; every command lives in a module of this library and
//! writes to the `out`/`err` it is given, so tests can call it directly.

pub mod campaigns;
pub mod cli;
pub mod customers;
pub mod dlq;
mod error;
pub mod hooks;
pub mod migrate;
pub mod onboard;
pub mod parked;
pub mod people;
pub mod report;
pub mod secrets;
pub mod templates;
pub mod tenants;
pub mod usage;

use std::io::Write;

pub use error::OpsError;

use cli::{
    CampaignsCommand, Cli, Command, CustomersCommand, DlqCommand, HooksCommand, KeysCommand,
    MembersCommand, ParkedCommand, SecretsCommand, TemplatesCommand, TenantCommand,
};
use shared::campaign::Operation;
use shared::platform::Db;
use shared::platform::hooks::Fields;
use shared::platform::members::Directory;

/// AWS configuration from the environment (AWS_REGION, AWS_ENDPOINT_URL, credentials...).
async fn aws() -> aws_config::SdkConfig {
    aws_config::load_from_env().await
}

/// The stack's table, for the commands that read or change tenants.
async fn db(globals: &cli::Globals) -> Result<shared::platform::Db, OpsError> {
    let table = globals.table()?;
    Ok(shared::platform::Db::new(
        aws_sdk_dynamodb::Client::new(&aws().await),
        table,
    ))
}

/// The tenant's WhatsApp token from its secret, as the worker reads it.
async fn whatsapp_token(globals: &cli::Globals, phone_number_id: &str) -> Result<String, OpsError> {
    let name = secrets::secret_name(&globals.stack, phone_number_id);
    let client = aws_sdk_secretsmanager::Client::new(&aws().await);
    secrets::read(&client, &name)
        .await?
        .and_then(|secret| {
            secret
                .get(secrets::WHATSAPP_TOKEN)
                .and_then(|v| v.as_str())
                .filter(|v| !v.is_empty())
                .map(str::to_owned)
        })
        .ok_or_else(|| {
            OpsError::Invalid(format!(
                "secret {name} has no {}: set it with `ops tenant secret {phone_number_id} --whatsapp-token -`",
                secrets::WHATSAPP_TOKEN,
            ))
        })
}

/// Runs one parsed command.
pub async fn run(cli: Cli, out: &mut dyn Write, err: &mut dyn Write) -> Result<(), OpsError> {
    let globals = cli.globals;
    match cli.command {
        Command::Keys(command) => {
            let db = Db::new(
                aws_sdk_dynamodb::Client::new(&aws().await),
                globals.table()?,
            );
            match command {
                KeysCommand::Create {
                    tenant,
                    name,
                    scopes,
                } => {
                    people::create_key(&db, people::owner(tenant)?, &name, &scopes, out, err).await
                }
                KeysCommand::List { tenant } => {
                    people::list_keys(&db, people::owner(tenant)?, out).await
                }
                KeysCommand::Revoke { tenant, id } => {
                    people::revoke_key(&db, people::owner(tenant)?, &id, out).await
                }
            }
        }
        Command::Members(command) => {
            let aws = aws().await;
            let db = Db::new(aws_sdk_dynamodb::Client::new(&aws), globals.table()?);
            match command {
                MembersCommand::Add {
                    tenant,
                    role,
                    user_pool_id,
                    email,
                } => {
                    let owner = people::owner(tenant)?;
                    let role = match owner {
                        shared::platform::access::Owner::Platform => {
                            shared::platform::access::Role::Admin
                        }
                        _ => role.parse().map_err(OpsError::Invalid)?,
                    };
                    let directory = Directory {
                        client: aws_sdk_cognitoidentityprovider::Client::new(&aws),
                        user_pool_id,
                    };
                    people::add_member(&db, &directory, owner, &email, role, out).await
                }
                MembersCommand::List { tenant } => {
                    people::list_members(&db, people::owner(tenant)?, out).await
                }
                MembersCommand::Remove { tenant, sub } => {
                    people::remove_member(&db, people::owner(tenant)?, &sub, out).await
                }
            }
        }
        Command::Tenant(TenantCommand::Validate { files }) => {
            tenants::validate_all(&files, out, err).map(drop)
        }
        Command::Tenant(TenantCommand::Put { files }) => {
            tenants::put(&db(&globals).await?, &files, out, err).await
        }
        Command::Tenant(TenantCommand::List) => tenants::list(&db(&globals).await?, out).await,
        Command::Tenant(TenantCommand::Show {
            phone_number_id,
            version,
        }) => {
            tenants::check_id("phone_number_id", &phone_number_id)?;
            tenants::show(&db(&globals).await?, &phone_number_id, version, out).await
        }
        Command::Tenant(TenantCommand::Versions { phone_number_id }) => {
            tenants::check_id("phone_number_id", &phone_number_id)?;
            tenants::versions(&db(&globals).await?, &phone_number_id, out).await
        }
        Command::Tenant(TenantCommand::Rollback {
            phone_number_id,
            version,
            expected_version,
        }) => {
            tenants::check_id("phone_number_id", &phone_number_id)?;
            let db = db(&globals).await?;
            tenants::rollback(&db, &phone_number_id, version, expected_version, out).await
        }
        Command::Tenant(TenantCommand::Disable { phone_number_id }) => {
            tenants::check_id("phone_number_id", &phone_number_id)?;
            tenants::set_disabled(&db(&globals).await?, &phone_number_id, true, out).await
        }
        Command::Tenant(TenantCommand::Enable { phone_number_id }) => {
            tenants::check_id("phone_number_id", &phone_number_id)?;
            tenants::set_disabled(&db(&globals).await?, &phone_number_id, false, out).await
        }
        Command::Tenant(TenantCommand::Secret(args)) => {
            tenants::check_id("phone_number_id", &args.phone_number_id)?;
            let mut updates = secrets::collect_updates(
                [
                    (secrets::WHATSAPP_TOKEN, args.whatsapp_token),
                    (secrets::CHATWOOT_TOKEN, args.chatwoot_token),
                    (secrets::DESK_TOKEN, args.desk_token),
                    (
                        secrets::CHATWOOT_WEBHOOK_SECRET,
                        args.chatwoot_webhook_secret,
                    ),
                ],
                &mut std::io::stdin().lock(),
            )?;
            let generated = secrets::prepare_desk_token(&mut updates)?;
            let client = aws_sdk_secretsmanager::Client::new(&aws().await);
            secrets::command(
                &client,
                &globals.stack,
                &args.phone_number_id,
                &updates,
                generated,
                out,
            )
            .await
        }
        Command::Secrets(SecretsCommand::Migrate { remove_old }) => {
            let client = aws_sdk_secretsmanager::Client::new(&aws().await);
            migrate::command(&client, &globals.stack, remove_old, out).await
        }
        Command::Parked(ParkedCommand::List { phone_number_id }) => {
            tenants::check_id("phone_number_id", &phone_number_id)?;
            let table = globals.table()?;
            let dynamodb = aws_sdk_dynamodb::Client::new(&aws().await);
            parked::list_command(&dynamodb, table, &phone_number_id, out, err).await
        }
        Command::Parked(ParkedCommand::Replay { phone_number_id }) => {
            tenants::check_id("phone_number_id", &phone_number_id)?;
            let table = globals.table()?;
            let queue_url = globals.inbound_queue_url()?;
            let config = aws().await;
            let dynamodb = aws_sdk_dynamodb::Client::new(&config);
            let sqs = aws_sdk_sqs::Client::new(&config);
            parked::replay(
                &dynamodb,
                &sqs,
                table,
                queue_url,
                &phone_number_id,
                out,
                err,
            )
            .await
        }
        Command::Dlq(DlqCommand::Redrive { max }) => {
            let dlq_url = globals.dlq_url()?;
            let queue_url = globals.inbound_queue_url()?;
            let sqs = aws_sdk_sqs::Client::new(&aws().await);
            let max = max.map(|n| n as usize);
            dlq::command(&sqs, dlq_url, queue_url, max, out, err).await
        }
        Command::Onboard(args) => {
            tenants::check_id("phone_number_id", &args.phone_number_id)?;
            tenants::check_id("--waba-id", &args.waba_id)?;
            onboard::check_pin(&args.pin)?;
            let token = whatsapp_token(&globals, &args.phone_number_id).await?;
            let graph = onboard::Graph::from_env(token)?;
            onboard::onboard(&graph, &args.phone_number_id, &args.waba_id, &args.pin, out).await
        }
        Command::AiUsage(args) => {
            tenants::check_id("phone_number_id", &args.phone_number_id)?;
            let month = args
                .month
                .unwrap_or_else(|| chrono::Utc::now().format("%Y-%m").to_string());
            usage::check_month(&month)?;
            let table = globals.table()?;
            let dynamodb = aws_sdk_dynamodb::Client::new(&aws().await);
            let rows = usage::month(&dynamodb, table, &args.phone_number_id, &month).await?;
            let prices = args
                .input_price
                .zip(args.output_price)
                .map(|(input, output)| usage::Prices { input, output });
            usage::report(&rows, prices, out)
        }
        Command::Report(args) => {
            tenants::check_id("--tenant", &args.tenant)?;
            let range = report::range(&args)?;
            let table = globals.table()?;
            let dynamodb = aws_sdk_dynamodb::Client::new(&aws().await);
            report::command(&dynamodb, table, &args, range, out).await
        }
        Command::Campaigns(command) => {
            let db = db(&globals).await?;
            match command {
                CampaignsCommand::List { tenant, state } => {
                    tenants::check_id("--tenant", &tenant)?;
                    campaigns::list(&db, &tenant, state.as_deref(), out).await
                }
                CampaignsCommand::Show { tenant, id } => {
                    tenants::check_id("--tenant", &tenant)?;
                    campaigns::show(&db, &tenant, &id, out).await
                }
                CampaignsCommand::Pause { tenant, id, reason } => {
                    tenants::check_id("--tenant", &tenant)?;
                    campaigns::stop(&db, &tenant, &id, Operation::Pause, Some(reason), out).await
                }
                CampaignsCommand::Cancel { tenant, id } => {
                    tenants::check_id("--tenant", &tenant)?;
                    campaigns::stop(&db, &tenant, &id, Operation::Cancel, None, out).await
                }
            }
        }
        Command::Customers(command) => {
            let table = globals.table()?;
            let config = aws().await;
            let db = Db::new(aws_sdk_dynamodb::Client::new(&config), table);
            match command {
                CustomersCommand::Export(args) => {
                    tenants::check_id("--tenant", &args.tenant)?;
                    customers::export(&db, &args.tenant, &args.customer, out).await
                }
                CustomersCommand::Erase { customer, wait } => {
                    tenants::check_id("--tenant", &customer.tenant)?;
                    let queue_url = globals.inbound_queue_url()?;
                    let sqs = aws_sdk_sqs::Client::new(&config);
                    customers::erase(
                        &db,
                        &sqs,
                        queue_url,
                        &customer.tenant,
                        &customer.customer,
                        wait,
                        out,
                        err,
                    )
                    .await
                }
                CustomersCommand::Erasure { tenant, id } => {
                    tenants::check_id("--tenant", &tenant)?;
                    customers::status(&db, &tenant, &id, out).await
                }
            }
        }
        Command::Hooks(command) => {
            let config = aws().await;
            let db = Db::new(aws_sdk_dynamodb::Client::new(&config), globals.table()?);
            let secrets =
                hooks::secrets(aws_sdk_secretsmanager::Client::new(&config), &globals.stack);
            match command {
                HooksCommand::List { tenant } => {
                    tenants::check_id("--tenant", &tenant)?;
                    hooks::list(&db, &tenant, out).await
                }
                HooksCommand::Create {
                    tenant,
                    url,
                    events,
                    description,
                    disabled,
                } => {
                    tenants::check_id("--tenant", &tenant)?;
                    let fields = Fields {
                        url: Some(url),
                        events: Some(events),
                        description: Some(description),
                        enabled: Some(!disabled),
                    };
                    hooks::create(&db, &secrets, &tenant, &fields, out, err).await
                }
                HooksCommand::Update {
                    tenant,
                    id,
                    url,
                    events,
                    description,
                    enable,
                    disable,
                } => {
                    tenants::check_id("--tenant", &tenant)?;
                    let fields = Fields {
                        url,
                        events,
                        description: description.map(|d| Some(d).filter(|d| !d.is_empty())),
                        enabled: (enable || disable).then_some(enable),
                    };
                    hooks::update(&db, &tenant, &id, &fields, out).await
                }
                HooksCommand::RotateSecret { tenant, id } => {
                    tenants::check_id("--tenant", &tenant)?;
                    hooks::rotate_secret(&db, &secrets, &tenant, &id, out, err).await
                }
                HooksCommand::Delete { tenant, id } => {
                    tenants::check_id("--tenant", &tenant)?;
                    hooks::delete(&db, &secrets, &tenant, &id, out).await
                }
            }
        }
        Command::Templates(command) => {
            let db = db(&globals).await?;
            match command {
                TemplatesCommand::List { tenant } => {
                    tenants::check_id("--tenant", &tenant)?;
                    templates::list(&db, &tenant, out).await
                }
                TemplatesCommand::Sync { tenant } => {
                    tenants::check_id("--tenant", &tenant)?;
                    let token = whatsapp_token(&globals, &tenant).await?;
                    templates::sync(&db, &tenant, &token, out).await
                }
            }
        }
    }
}
