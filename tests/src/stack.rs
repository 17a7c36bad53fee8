//! The local stack (moto) as the tests see it: each test makes its own queue and secret, so
//! tests run in parallel without seeing each other's messages.

use std::sync::atomic::{AtomicU32, Ordering};

use aws_sdk_sqs::types::{
    DeleteMessageBatchRequestEntry, MessageSystemAttributeName, QueueAttributeName,
};
use serde_json::Value;

pub struct Stack {
    pub endpoint: String,
    pub dynamodb: aws_sdk_dynamodb::Client,
    pub sqs: aws_sdk_sqs::Client,
    pub secrets: aws_sdk_secretsmanager::Client,
    pub sns: aws_sdk_sns::Client,
    /// Path-style, as the api addresses the emulator.
    pub s3: aws_sdk_s3::Client,
}

/// A message read back from a queue.
#[derive(Debug, Clone)]
pub struct Received {
    pub group_id: String,
    pub dedup_id: String,
    pub body: Value,
}

static UNIQUE: AtomicU32 = AtomicU32::new(0);

/// A name no other test in this or another run uses.
pub fn unique(prefix: &str) -> String {
    format!(
        "{prefix}-{}-{}",
        std::process::id(),
        UNIQUE.fetch_add(1, Ordering::SeqCst)
    )
}

impl Stack {
    /// Connects to the local stack the test command started (`AWS_ENDPOINT_URL`).
    pub async fn connect() -> Stack {
        let endpoint = std::env::var("AWS_ENDPOINT_URL").expect(
            "AWS_ENDPOINT_URL is not set: run the tests through the README's test command, which starts the local stack",
        );
        let config = aws_config::from_env()
            .endpoint_url(&endpoint)
            .region(aws_config::Region::new("us-east-1"))
            .credentials_provider(aws_sdk_sqs::config::Credentials::for_tests())
            .load()
            .await;
        Stack {
            dynamodb: aws_sdk_dynamodb::Client::new(&config),
            sqs: aws_sdk_sqs::Client::new(&config),
            secrets: aws_sdk_secretsmanager::Client::new(&config),
            sns: aws_sdk_sns::Client::new(&config),
            s3: aws_sdk_s3::Client::from_conf(
                aws_sdk_s3::config::Builder::from(&config)
                    .force_path_style(true)
                    .build(),
            ),
            endpoint,
        }
    }

    /// The environment a function gets in this stack, as the template would set it.
    pub fn function_env(&self, endpoint: &str, extra: &[(&str, &str)]) -> Vec<(String, String)> {
        let mut env: Vec<(String, String)> = [
            ("AWS_ENDPOINT_URL", endpoint),
            ("AWS_REGION", "us-east-1"),
            ("AWS_ACCESS_KEY_ID", "local"),
            ("AWS_SECRET_ACCESS_KEY", "local"),
            ("RUST_LOG", "info"),
        ]
        .iter()
        .map(|(k, v)| (k.to_string(), v.to_string()))
        .collect();
        env.extend(extra.iter().map(|(k, v)| (k.to_string(), v.to_string())));
        env
    }

    /// A bucket of its own (the template's campaign bucket).
    pub async fn bucket(&self, prefix: &str) -> String {
        let name = unique(prefix).to_lowercase();
        self.s3
            .create_bucket()
            .bucket(&name)
            .send()
            .await
            .expect("create a bucket");
        name
    }

    /// A FIFO queue with the template's inbound queue's ordering and deduplication
    /// attributes (its timings are left to each test: a redelivery test waits for them).
    pub async fn fifo_queue(&self, prefix: &str) -> String {
        const ORDERING: [&str; 4] = [
            "FifoQueue",
            "ContentBasedDeduplication",
            "DeduplicationScope",
            "FifoThroughputLimit",
        ];
        let properties = template_resource("InboundQueue");
        let mut create = self
            .sqs
            .create_queue()
            .queue_name(format!("{}.fifo", unique(prefix)));
        for name in ORDERING {
            let value = match &properties[name] {
                serde_yaml_ng::Value::Bool(flag) => flag.to_string(),
                serde_yaml_ng::Value::String(text) => text.clone(),
                other => panic!("template.yaml: InboundQueue.{name}: unexpected {other:?}"),
            };
            create = create.attributes(QueueAttributeName::from(name), value);
        }
        create
            .send()
            .await
            .expect("create queue")
            .queue_url
            .unwrap()
    }

    /// An SNS topic with a queue subscribed to it (raw delivery): returns both.
    pub async fn topic_with_queue(&self, prefix: &str) -> (String, String) {
        let topic = self
            .sns
            .create_topic()
            .name(unique(prefix))
            .send()
            .await
            .expect("create topic")
            .topic_arn
            .unwrap();
        let queue_url = self
            .sqs
            .create_queue()
            .queue_name(unique(prefix))
            .send()
            .await
            .expect("create queue")
            .queue_url
            .unwrap();
        let queue_arn = self
            .sqs
            .get_queue_attributes()
            .queue_url(&queue_url)
            .attribute_names(QueueAttributeName::QueueArn)
            .send()
            .await
            .expect("queue attributes")
            .attributes
            .unwrap()[&QueueAttributeName::QueueArn]
            .clone();
        self.sns
            .subscribe()
            .topic_arn(&topic)
            .protocol("sqs")
            .endpoint(queue_arn)
            .attributes("RawMessageDelivery", "true")
            .send()
            .await
            .expect("subscribe");
        (topic, queue_url)
    }

    /// A table as the template defines it: its attributes, key schema, indexes and TTL
    /// attribute.
    pub async fn table(&self) -> String {
        use aws_sdk_dynamodb::types::{
            AttributeDefinition, BillingMode, GlobalSecondaryIndex, KeySchemaElement, KeyType,
            Projection, ProjectionType, ScalarAttributeType, TimeToLiveSpecification,
        };
        let properties = template_resource("Table");
        let text = |value: &serde_yaml_ng::Value| value.as_str().expect("a string").to_owned();
        let name = unique("desk");
        let mut create = self
            .dynamodb
            .create_table()
            .table_name(&name)
            .billing_mode(BillingMode::from(text(&properties["BillingMode"]).as_str()));
        for attribute in properties["AttributeDefinitions"].as_sequence().unwrap() {
            create = create.attribute_definitions(
                AttributeDefinition::builder()
                    .attribute_name(text(&attribute["AttributeName"]))
                    .attribute_type(ScalarAttributeType::from(
                        text(&attribute["AttributeType"]).as_str(),
                    ))
                    .build()
                    .unwrap(),
            );
        }
        for key in properties["KeySchema"].as_sequence().unwrap() {
            create = create.key_schema(
                KeySchemaElement::builder()
                    .attribute_name(text(&key["AttributeName"]))
                    .key_type(KeyType::from(text(&key["KeyType"]).as_str()))
                    .build()
                    .unwrap(),
            );
        }
        for index in properties["GlobalSecondaryIndexes"]
            .as_sequence()
            .into_iter()
            .flatten()
        {
            let projection = &index["Projection"];
            let mut gsi = GlobalSecondaryIndex::builder()
                .index_name(text(&index["IndexName"]))
                .projection(
                    Projection::builder()
                        .projection_type(ProjectionType::from(
                            text(&projection["ProjectionType"]).as_str(),
                        ))
                        .set_non_key_attributes(
                            projection["NonKeyAttributes"]
                                .as_sequence()
                                .map(|names| names.iter().map(text).collect()),
                        )
                        .build(),
                );
            for key in index["KeySchema"].as_sequence().unwrap() {
                gsi = gsi.key_schema(
                    KeySchemaElement::builder()
                        .attribute_name(text(&key["AttributeName"]))
                        .key_type(KeyType::from(text(&key["KeyType"]).as_str()))
                        .build()
                        .unwrap(),
                );
            }
            create = create.global_secondary_indexes(gsi.build().unwrap());
        }
        create.send().await.expect("create table");
        let ttl = &properties["TimeToLiveSpecification"];
        self.dynamodb
            .update_time_to_live()
            .table_name(&name)
            .time_to_live_specification(
                TimeToLiveSpecification::builder()
                    .attribute_name(text(&ttl["AttributeName"]))
                    .enabled(ttl["Enabled"].as_bool().unwrap_or(true))
                    .build()
                    .unwrap(),
            )
            .send()
            .await
            .expect("table TTL");
        name
    }

    /// Stores a tenant as the ops CLI and the API do (the same writer), without the rules:
    /// the tests' tenants point at local fakes.
    pub async fn put_tenant(&self, table: &str, tenant: &shared::tenant::Tenant) {
        use shared::platform::tenants::{ValidTenant, put};
        let db = shared::platform::Db::new(self.dynamodb.clone(), table);
        put(&db, &ValidTenant::unchecked(tenant.clone()), "test")
            .await
            .expect("put tenant");
    }

    /// Every item of a table whose pk starts with `prefix`.
    pub async fn items(
        &self,
        table: &str,
        prefix: &str,
    ) -> Vec<std::collections::HashMap<String, aws_sdk_dynamodb::types::AttributeValue>> {
        use aws_sdk_dynamodb::types::AttributeValue::S;
        self.dynamodb
            .scan()
            .table_name(table)
            .filter_expression("begins_with(pk, :prefix)")
            .expression_attribute_values(":prefix", S(prefix.into()))
            .send()
            .await
            .expect("scan")
            .items
            .unwrap_or_default()
    }

    /// A secret holding `value`; returns its ARN.
    pub async fn secret(&self, value: &str) -> String {
        self.named_secret(&unique("app-secret"), value).await
    }

    pub async fn named_secret(&self, name: &str, value: &str) -> String {
        self.secrets
            .create_secret()
            .name(name)
            .secret_string(value)
            .send()
            .await
            .expect("create secret")
            .arn
            .unwrap()
    }

    pub async fn put_secret(&self, arn: &str, value: &str) {
        self.secrets
            .put_secret_value()
            .secret_id(arn)
            .secret_string(value)
            .send()
            .await
            .expect("put secret value");
    }

    /// Receives and deletes everything the queue holds.
    pub async fn drain(&self, queue_url: &str) -> Vec<Received> {
        let mut received = Vec::new();
        while self.receive_some(queue_url, &mut received).await > 0 {}
        received
    }

    /// Runs `work` while consuming the queue concurrently, as the worker would, then drains
    /// what is left. moto's FIFO send slows down with the queue's length, so a large send
    /// is only realistic with a consumer running.
    pub async fn drain_during<T>(
        &self,
        queue_url: &str,
        work: impl Future<Output = T>,
    ) -> (T, Vec<Received>) {
        let done = std::sync::atomic::AtomicBool::new(false);
        let consumer = || async {
            let mut received = Vec::new();
            while !done.load(Ordering::SeqCst) {
                if self.receive_some(queue_url, &mut received).await == 0 {
                    tokio::task::yield_now().await;
                }
            }
            received
        };
        let work = async {
            let output = work.await;
            done.store(true, Ordering::SeqCst);
            output
        };
        let (output, a, b, c) = tokio::join!(work, consumer(), consumer(), consumer());
        let mut received: Vec<Received> = [a, b, c].into_iter().flatten().collect();
        received.extend(self.drain(queue_url).await);
        (output, received)
    }

    /// One receive (and delete) of up to 10 messages; returns how many came.
    async fn receive_some(&self, queue_url: &str, received: &mut Vec<Received>) -> usize {
        {
            let output = self
                .sqs
                .receive_message()
                .queue_url(queue_url)
                .max_number_of_messages(10)
                .message_system_attribute_names(MessageSystemAttributeName::All)
                .wait_time_seconds(0)
                .send()
                .await
                .expect("receive");
            let messages = output.messages.unwrap_or_default();
            let count = messages.len();
            let mut deletes = Vec::with_capacity(count);
            for (index, message) in messages.into_iter().enumerate() {
                let attributes = message.attributes.unwrap_or_default();
                let attribute = |name| attributes.get(&name).cloned().unwrap_or_default();
                received.push(Received {
                    group_id: attribute(MessageSystemAttributeName::MessageGroupId),
                    dedup_id: attribute(MessageSystemAttributeName::MessageDeduplicationId),
                    body: serde_json::from_str(message.body.as_deref().unwrap_or("null")).unwrap(),
                });
                deletes.push(
                    DeleteMessageBatchRequestEntry::builder()
                        .id(index.to_string())
                        .receipt_handle(message.receipt_handle.unwrap())
                        .build()
                        .unwrap(),
                );
            }
            if !deletes.is_empty() {
                self.sqs
                    .delete_message_batch()
                    .queue_url(queue_url)
                    .set_entries(Some(deletes))
                    .send()
                    .await
                    .expect("delete");
            }
            count
        }
    }
}

/// The `Properties` of a resource of `template.yaml`: the tests' tables and queues are made
/// from the same definition the stack deploys and the local stack creates.
pub fn template_resource(logical_id: &str) -> serde_yaml_ng::Value {
    let path = concat!(env!("CARGO_MANIFEST_DIR"), "/../template.yaml");
    let template: serde_yaml_ng::Value =
        serde_yaml_ng::from_str(&std::fs::read_to_string(path).expect("template.yaml"))
            .expect("template.yaml parses");
    let properties = template["Resources"][logical_id]["Properties"].clone();
    assert!(
        properties.is_mapping(),
        "template.yaml has no resource {logical_id} with properties"
    );
    properties
}
