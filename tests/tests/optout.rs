//! Black-box tests of opting out and Meta's signals: Meta's signed webhooks through the real
//! webhook binary onto a FIFO queue, and what it queued through the real worker binary, on
//! the local stack.

use blackbox::conversation::{Harness, MARIA, NUMBER};
use blackbox::http::{app_secrets_json, signed_post, status};
use blackbox::runtime::{Function, binary};
use blackbox::stack::Stack;
use serde_json::{Value, json};
use shared::envelope::Envelope;
use shared::store::keys;

/// The real webhook, with its own queue: posts Meta's signed body, returns what it queued.
struct Webhook {
    function: Function,
    queue_url: String,
}

impl Webhook {
    async fn start(stack: &Stack) -> Webhook {
        let queue_url = stack.fifo_queue("inbound").await;
        let secret_arn = stack.secret(&app_secrets_json()).await;
        let env = stack.function_env(
            &stack.endpoint,
            &[
                ("APP_SECRET_ID", &secret_arn),
                ("INBOUND_QUEUE_URL", &queue_url),
            ],
        );
        let function = Function::start(&binary("webhook", "debug"), &env).await;
        Webhook {
            function,
            queue_url,
        }
    }

    async fn post(&mut self, stack: &Stack, body: &Value) -> Vec<Envelope> {
        let body = serde_json::to_vec(body).unwrap();
        let response = self.function.invoke(&signed_post(&body)).await.unwrap();
        assert_eq!(status(&response), 200);
        stack
            .drain(&self.queue_url)
            .await
            .iter()
            .map(|r| Envelope::from_json(&r.body.to_string()).unwrap())
            .collect()
    }
}

/// A customer's text as Meta posts it, with their business-scoped user id.
fn text(customer: &str, user_id: &str, wamid: &str, body: &str, timestamp: i64) -> Value {
    json!({"object": "whatsapp_business_account", "entry": [{"id": "102290129340398", "changes": [{"field": "messages", "value": {
        "messaging_product": "whatsapp",
        "metadata": {"display_phone_number": "551130000000", "phone_number_id": NUMBER},
        "contacts": [{"profile": {"name": "Maria"}, "wa_id": customer, "user_id": user_id}],
        "messages": [{"from": customer, "from_user_id": user_id, "id": wamid, "timestamp": timestamp.to_string(), "type": "text", "text": {"body": body}}]
    }}]}]})
}

async fn entry(bot: &Harness, number: &str, id: &str) -> Option<String> {
    bot.stack
        .items(&bot.table, &keys::suppression(number))
        .await
        .into_iter()
        .find(|item| item["sk"].as_s().unwrap() == &keys::customer_hash(number, id))
        .map(|item| item["source"].as_s().unwrap().clone())
}

#[tokio::test]
async fn sair_suppresses_the_customer_by_number_and_user_id_and_is_acknowledged_once() {
    let mut bot = Harness::start(&[]).await;
    // A second tenant on the same table, untouched by the first's customers.
    let mut other = shared::tenant::demo();
    other.phone_number_id = "106540352242999".into();
    bot.stack.put_tenant(&bot.table, &other).await;
    let mut webhook = Webhook::start(&bot.stack).await;
    let reply = format!("text: {}", shared::tenant::demo().campaigns.opt_out_reply);

    bot.clock += 5;
    let stop = text(MARIA, "BR.8870001234", "wamid.optout.1", "SAIR", bot.clock);
    let queued = webhook.post(&bot.stack, &stop).await;
    assert_eq!(bot.feed(&queued).await, [reply]);
    assert_eq!(entry(&bot, NUMBER, MARIA).await.as_deref(), Some("words"));
    assert_eq!(
        entry(&bot, NUMBER, "BR.8870001234").await.as_deref(),
        Some("words")
    );
    // Meta's retry of the same message, then the customer saying it again: no second reply.
    assert_eq!(bot.feed(&queued).await, Vec::<String>::new());
    bot.clock += 5;
    let again = text(MARIA, "BR.8870001234", "wamid.optout.2", "parar", bot.clock);
    let queued = webhook.post(&bot.stack, &again).await;
    assert_eq!(bot.feed(&queued).await, Vec::<String>::new());
    // Only hashes are stored, and nothing for the other tenant.
    let listed = bot.stack.items(&bot.table, "OPTOUT#").await;
    assert_eq!(listed.len(), 2);
    assert!(
        listed
            .iter()
            .all(|item| !format!("{item:?}").contains(MARIA))
    );
    assert!(listed.iter().all(|item| !item.contains_key("expires_at")));
    assert_eq!(entry(&bot, "106540352242999", MARIA).await, None);
}

#[tokio::test]
async fn meta_marketing_stop_and_resume_change_the_list() {
    let mut bot = Harness::start(&[]).await;
    let mut webhook = Webhook::start(&bot.stack).await;
    let preference = |value: &str, timestamp: i64| {
        json!({"object": "whatsapp_business_account", "entry": [{"id": "102290129340398", "changes": [{"field": "user_preferences", "value": {
            "messaging_product": "whatsapp",
            "metadata": {"display_phone_number": "551130000000", "phone_number_id": NUMBER},
            "contacts": [{"profile": {"name": "Maria"}, "wa_id": MARIA, "user_id": "BR.77"}],
            "user_preferences": [{"wa_id": MARIA, "user_id": "BR.77", "detail": "", "category": "marketing_messages", "value": value, "timestamp": timestamp}]
        }}]}]})
    };
    let queued = webhook
        .post(&bot.stack, &preference("stop", 1_789_000_000))
        .await;
    assert_eq!(queued[0].group_key(), format!("{NUMBER}:{MARIA}"));
    assert_eq!(
        bot.feed(&queued).await,
        Vec::<String>::new(),
        "nothing sent"
    );
    assert_eq!(entry(&bot, NUMBER, MARIA).await.as_deref(), Some("meta"));
    assert_eq!(entry(&bot, NUMBER, "BR.77").await.as_deref(), Some("meta"));
    let queued = webhook
        .post(&bot.stack, &preference("resume", 1_789_000_100))
        .await;
    bot.feed(&queued).await;
    assert_eq!(entry(&bot, NUMBER, MARIA).await, None);
    assert_eq!(entry(&bot, NUMBER, "BR.77").await, None);
}

#[tokio::test]
async fn a_template_paused_by_webhook_lands_in_the_waba_item_and_alerts_supervisors() {
    let stack = Stack::connect().await;
    let (topic, alerts) = stack.topic_with_queue("alerts").await;
    let mut bot = Harness::start(&[("SLA_ALERT_TOPIC_ARN", &topic)]).await;
    let mut webhook = Webhook::start(&bot.stack).await;
    let paused = json!({"object": "whatsapp_business_account", "entry": [{"id": "102290129340398", "time": 1789000100, "changes": [{"field": "message_template_status_update", "value": {
        "event": "PAUSED", "message_template_id": 990_000_000_000_003_i64, "message_template_name": "promo_outubro",
        "message_template_language": "pt_BR", "reason": "NONE", "message_template_category": "MARKETING",
        "other_info": {"title": "FIRST_PAUSE", "description": "Your template was paused due to low quality."}}}]}]});
    let queued = webhook.post(&bot.stack, &paused).await;
    assert_eq!(queued[0].group_key(), "waba:102290129340398");
    assert_eq!(bot.feed(&queued).await, Vec::<String>::new());
    let items = bot.stack.items(&bot.table, "WABA#102290129340398").await;
    let template = items
        .iter()
        .find(|item| item["sk"].as_s().unwrap() == "TEMPLATE#promo_outubro#pt_BR")
        .expect("the template's item");
    assert_eq!(template["status"].as_s().unwrap(), "PAUSED");
    assert_eq!(template["category"].as_s().unwrap(), "MARKETING");
    assert_eq!(template["at"].as_n().unwrap(), "1789000100");
    let published = stack.drain(&alerts).await;
    assert_eq!(published.len(), 1);
    assert_eq!(published[0].body["waba_id"], "102290129340398");
    assert_eq!(published[0].body["signal"]["event"], "PAUSED");
}

/// The API records an opt-out made elsewhere and an opt-in, by hash; admins only; another
/// tenant's admin cannot tell; the templates Meta reported are listed to readers.
#[tokio::test]
async fn the_api_changes_the_list_one_customer_at_a_time_and_lists_templates() {
    use blackbox::api::Api;
    use shared::platform::access::{Owner, Scope};
    let stack = Stack::connect().await;
    let mut api = Api::start(&stack, &[]).await;
    let mut other = shared::tenant::demo();
    other.phone_number_id = "106540352242999".into();
    for tenant in [shared::tenant::demo(), other] {
        stack.put_tenant(&api.table, &tenant).await;
    }
    let admin = api.key(Owner::Tenant(NUMBER.into()), &[Scope::Admin]).await;
    let reader = api.key(Owner::Tenant(NUMBER.into()), &[Scope::Read]).await;
    let stranger = api
        .key(Owner::Tenant("106540352242999".into()), &[Scope::Admin])
        .await;
    let path = format!("/v1/tenants/{NUMBER}/suppressions/{MARIA}");

    assert_eq!(api.call("GET", &path, Some(&admin), None).await.status, 404);
    let put = api.call("PUT", &path, Some(&admin), None).await;
    assert_eq!(put.status, 200, "{:?}", put.body);
    assert_eq!(put.body["source"], "api");
    let again = api.call("PUT", &path, Some(&admin), None).await;
    assert_eq!(again.body["since"], put.body["since"], "kept as listed");
    assert_eq!(api.call("GET", &path, Some(&admin), None).await.status, 200);
    assert_eq!(
        api.call("GET", &path, Some(&reader), None).await.status,
        403
    );
    assert_eq!(
        api.call("PUT", &path, Some(&stranger), None).await.status,
        404
    );
    let listed = stack.items(&api.table, &keys::suppression(NUMBER)).await;
    assert_eq!(listed.len(), 1);
    assert_eq!(
        listed[0]["sk"].as_s().unwrap(),
        &keys::customer_hash(NUMBER, MARIA)
    );
    let bad = format!("/v1/tenants/{NUMBER}/suppressions/55%2311");
    let refused = api.call("PUT", &bad, Some(&admin), None).await;
    assert_eq!(
        (refused.status, &refused.body["errors"][0]["pointer"]),
        (400, &json!("/path/customer"))
    );

    assert_eq!(
        api.call("DELETE", &path, Some(&admin), None).await.status,
        204
    );
    assert_eq!(
        api.call("DELETE", &path, Some(&admin), None).await.status,
        404
    );
    assert!(
        stack
            .items(&api.table, &keys::suppression(NUMBER))
            .await
            .is_empty()
    );

    // Templates as Meta reported them, to a reader.
    let templates = format!("/v1/tenants/{NUMBER}/templates");
    let empty = api.call("GET", &templates, Some(&reader), None).await;
    assert_eq!(empty.body, json!({"templates": []}));
    let store = shared::store::dynamodb::DynamoStore::new(stack.dynamodb.clone(), &api.table);
    use shared::store::Store;
    store
        .record_waba_signal(&shared::envelope::WabaSignal {
            waba_id: "102290129340398".into(),
            at: 1_789_000_100,
            signal: shared::envelope::Signal::TemplateStatus {
                name: "promo_outubro".into(),
                language: "pt_BR".into(),
                event: "PAUSED".into(),
                category: Some("MARKETING".into()),
                reason: Some("NONE".into()),
            },
        })
        .await
        .unwrap();
    let listed = api.call("GET", &templates, Some(&reader), None).await;
    assert_eq!(listed.status, 200);
    let template = &listed.body["templates"][0];
    assert_eq!(
        (
            &template["name"],
            &template["language"],
            &template["status"]
        ),
        (&json!("promo_outubro"), &json!("pt_BR"), &json!("PAUSED"))
    );
    assert_eq!(
        api.call("GET", &templates, Some(&stranger), None)
            .await
            .status,
        404
    );
}
