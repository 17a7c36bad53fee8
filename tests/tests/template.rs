//! The stack's template read as data: what no local run can show (key policies, retention on
//! delete, alarms, the event source's bound, the schedules' dead letters) is asserted here.
//! CloudFormation's short forms are read as their long forms (`!Ref X` as `{"Ref": "X"}`,
//! `!GetAtt A.B` as `{"Fn::GetAtt": ["A", "B"]}`), so the assertions read like the template.

use serde_json::{Map, Value, json};

fn template() -> Value {
    let path = concat!(env!("CARGO_MANIFEST_DIR"), "/../template.yaml");
    let text = std::fs::read_to_string(path).expect("template.yaml");
    let yaml: serde_yaml_ng::Value = serde_yaml_ng::from_str(&text).expect("template.yaml parses");
    long_form(yaml)
}

fn long_form(yaml: serde_yaml_ng::Value) -> Value {
    use serde_yaml_ng::Value as Yaml;
    match yaml {
        Yaml::Null => Value::Null,
        Yaml::Bool(flag) => Value::Bool(flag),
        Yaml::Number(number) => serde_json::to_value(number).expect("a number"),
        Yaml::String(text) => Value::String(text),
        Yaml::Sequence(items) => Value::Array(items.into_iter().map(long_form).collect()),
        Yaml::Mapping(entries) => Value::Object(
            entries
                .into_iter()
                .map(|(key, value)| {
                    let key = key.as_str().expect("string keys").to_owned();
                    (key, long_form(value))
                })
                .collect(),
        ),
        Yaml::Tagged(tagged) => {
            let tag = tagged.tag.to_string();
            let function = tag.trim_start_matches('!');
            let name = if function == "Ref" {
                "Ref".to_owned()
            } else {
                format!("Fn::{function}")
            };
            let value = match (function, tagged.value) {
                ("GetAtt", Yaml::String(path)) => {
                    let (resource, attribute) = path.split_once('.').expect("Resource.Attribute");
                    json!([resource, attribute])
                }
                (_, value) => long_form(value),
            };
            json!({ name: value })
        }
    }
}

fn resources(template: &Value) -> &Map<String, Value> {
    template["Resources"].as_object().expect("Resources")
}

fn of_type<'a>(template: &'a Value, kind: &str) -> Vec<(&'a String, &'a Value)> {
    resources(template)
        .iter()
        .filter(|(_, resource)| resource["Type"] == kind)
        .collect()
}

fn strings(value: &Value) -> Vec<&str> {
    match value {
        Value::String(one) => vec![one.as_str()],
        Value::Array(many) => many.iter().filter_map(Value::as_str).collect(),
        _ => Vec::new(),
    }
}

/// The alarms watching `metric` of `namespace` with `dimension` set to `value`.
fn alarms_on<'a>(
    template: &'a Value,
    namespace: &str,
    metric: &str,
    dimension: &str,
    value: &Value,
) -> Vec<&'a Value> {
    of_type(template, "AWS::CloudWatch::Alarm")
        .into_iter()
        .map(|(_, alarm)| &alarm["Properties"])
        .filter(|alarm| alarm["Namespace"] == namespace && alarm["MetricName"] == metric)
        .filter(|alarm| {
            alarm["Dimensions"]
                .as_array()
                .is_some_and(|all| all.contains(&json!({"Name": dimension, "Value": value})))
        })
        .collect()
}

const THIS_STACKS_ALARMS: &str =
    "arn:${AWS::Partition}:cloudwatch:${AWS::Region}:${AWS::AccountId}:alarm:${AWS::StackName}-*";

/// CloudWatch encrypts what it publishes with the topic's key: under the AWS-managed
/// `alias/aws/sns` (whose policy cannot name CloudWatch) no alarm ever reaches a person.
#[test]
fn the_alarm_topic_is_under_a_key_cloudwatch_may_use_for_this_stacks_alarms() {
    let template = template();
    let topic = &resources(&template)["AlarmTopic"]["Properties"];
    let key_id = topic["KmsMasterKeyId"]["Ref"]
        .as_str()
        .unwrap_or_else(|| panic!("AlarmTopic's key is not one of the stack's: {topic}"));
    let key = &resources(&template)[key_id];
    assert_eq!(key["Type"], "AWS::KMS::Key");
    assert_eq!(key["Properties"]["EnableKeyRotation"], true);

    let statements = key["Properties"]["KeyPolicy"]["Statement"]
        .as_array()
        .expect("a key policy");
    let account_root = json!({"Fn::Sub": "arn:${AWS::Partition}:iam::${AWS::AccountId}:root"});
    assert!(
        statements.iter().any(|statement| {
            statement["Effect"] == "Allow"
                && statement["Principal"]["AWS"] == account_root
                && strings(&statement["Action"]).contains(&"kms:*")
        }),
        "the account administers the key: {statements:?}"
    );
    let cloudwatch: Vec<&Value> = statements
        .iter()
        .filter(|statement| statement["Principal"]["Service"] == "cloudwatch.amazonaws.com")
        .collect();
    assert_eq!(
        cloudwatch.len(),
        1,
        "one grant to CloudWatch: {statements:?}"
    );
    let grant = cloudwatch[0];
    assert_eq!(grant["Effect"], "Allow");
    let mut actions = strings(&grant["Action"]);
    actions.sort();
    assert_eq!(actions, ["kms:Decrypt", "kms:GenerateDataKey*"]);
    assert_eq!(
        grant["Condition"],
        json!({
            "StringEquals": {"aws:SourceAccount": {"Ref": "AWS::AccountId"}},
            "ArnLike": {"aws:SourceArn": {"Fn::Sub": THIS_STACKS_ALARMS}},
        })
    );

    // The topic's own policy lets CloudWatch publish, for the same alarms.
    let policies = of_type(&template, "AWS::SNS::TopicPolicy");
    let publish = policies
        .iter()
        .filter(|(_, policy)| {
            policy["Properties"]["Topics"]
                .as_array()
                .is_some_and(|topics| topics.contains(&json!({"Ref": "AlarmTopic"})))
        })
        .flat_map(|(_, policy)| {
            policy["Properties"]["PolicyDocument"]["Statement"]
                .as_array()
                .cloned()
                .unwrap_or_default()
        })
        .find(|statement| statement["Principal"]["Service"] == "cloudwatch.amazonaws.com")
        .expect("the alarm topic's policy lets CloudWatch publish");
    assert_eq!(publish["Effect"], "Allow");
    assert_eq!(strings(&publish["Action"]), ["sns:Publish"]);
    assert_eq!(publish["Condition"], grant["Condition"]);

    // The grant covers an alarm only by its name: every alarm is named under the stack and
    // reports to the alarm topic.
    let alarms = of_type(&template, "AWS::CloudWatch::Alarm");
    assert!(
        alarms.len() >= 10,
        "the template's alarms: {}",
        alarms.len()
    );
    for (id, alarm) in alarms {
        let name = alarm["Properties"]["AlarmName"]["Fn::Sub"]
            .as_str()
            .unwrap_or_default();
        assert!(
            name.starts_with("${AWS::StackName}-"),
            "{id}: its name is outside the key's grant: {}",
            alarm["Properties"]["AlarmName"]
        );
        assert!(
            alarm["Properties"]["AlarmActions"]
                .as_array()
                .is_some_and(|actions| actions.contains(&json!({"Ref": "AlarmTopic"}))),
            "{id} does not notify the alarm topic"
        );
    }
}

/// A deleted stack, or a replacement by an update, must not take the conversations, the
/// queued events, the secrets or the people's accounts with it.
#[test]
fn the_table_the_inbound_queues_the_secrets_and_the_user_pool_are_retained() {
    let template = template();
    let mut stateful: Vec<&String> = ["AWS::DynamoDB::Table", "AWS::SecretsManager::Secret"]
        .iter()
        .flat_map(|kind| of_type(&template, kind))
        .map(|(id, _)| id)
        .collect();
    stateful.extend(
        of_type(&template, "AWS::Cognito::UserPool")
            .into_iter()
            .map(|(id, _)| id),
    );
    let queues = ["InboundQueue", "InboundDeadLetterQueue"];
    for queue in queues {
        let (id, _) = resources(&template)
            .get_key_value(queue)
            .unwrap_or_else(|| panic!("no {queue}"));
        stateful.push(id);
    }
    assert!(
        stateful.len() >= 6,
        "table, queues, secrets, user pool: {stateful:?}"
    );
    for id in stateful {
        let resource = &resources(&template)[id];
        assert_eq!(resource["DeletionPolicy"], "Retain", "{id}: DeletionPolicy");
        assert_eq!(
            resource["UpdateReplacePolicy"], "Retain",
            "{id}: UpdateReplacePolicy"
        );
    }
}

#[test]
fn alarms_watch_the_inbound_queues_oldest_message_and_the_workers_errors_and_throttles() {
    let template = template();
    let inbound = json!({"Fn::GetAtt": ["InboundQueue", "QueueName"]});
    let worker = json!({"Ref": "WorkerFunction"});
    let watched = [
        (
            "AWS/SQS",
            "ApproximateAgeOfOldestMessage",
            "QueueName",
            &inbound,
        ),
        ("AWS/Lambda", "Errors", "FunctionName", &worker),
        ("AWS/Lambda", "Throttles", "FunctionName", &worker),
    ];
    for (namespace, metric, dimension, value) in watched {
        let alarms = alarms_on(&template, namespace, metric, dimension, value);
        assert_eq!(alarms.len(), 1, "one alarm on {metric} of {value}");
        let alarm = alarms[0];
        assert!(
            alarm["AlarmActions"]
                .as_array()
                .is_some_and(|actions| actions.contains(&json!({"Ref": "AlarmTopic"}))),
            "the {metric} alarm notifies the alarm topic"
        );
        assert!(alarm["Threshold"].is_number(), "{metric}: a threshold");
    }
}

/// A burst of inbound events runs at most that many workers at once, whatever the account's
/// concurrency; AWS takes 2 to 1000.
#[test]
fn the_workers_concurrency_on_the_inbound_queue_is_bounded_by_a_parameter() {
    let template = template();
    let events = resources(&template)["WorkerFunction"]["Properties"]["Events"]
        .as_object()
        .expect("the worker's events");
    let sqs: Vec<&Value> = events
        .values()
        .filter(|event| event["Type"] == "SQS")
        .collect();
    assert_eq!(sqs.len(), 1, "the worker reads one queue");
    let bound = &sqs[0]["Properties"]["ScalingConfig"]["MaximumConcurrency"];
    let parameter = bound["Ref"]
        .as_str()
        .unwrap_or_else(|| panic!("MaximumConcurrency is not a parameter: {bound}"));
    let spec = &template["Parameters"][parameter];
    assert_eq!(spec["Type"], "Number", "{parameter}");
    let number = |field: &str| {
        spec[field]
            .as_u64()
            .unwrap_or_else(|| panic!("{parameter}.{field}: {}", spec[field]))
    };
    let (low, high, default) = (number("MinValue"), number("MaxValue"), number("Default"));
    assert!(low >= 2 && high <= 1000, "{parameter}: {low}..={high}");
    assert!((low..=high).contains(&default), "{parameter}: {default}");
}

/// A schedule that cannot invoke its function, or a run that fails after Lambda's retries,
/// lands in a standard queue of the schedules' own, and that queue has an alarm.
#[test]
fn the_schedules_retry_and_dead_letter_into_a_queue_of_their_own_with_an_alarm() {
    let template = template();
    let mut schedules = 0;
    for (id, function) in of_type(&template, "AWS::Serverless::Function") {
        let Some(events) = function["Properties"]["Events"].as_object() else {
            continue;
        };
        for (name, event) in events {
            if !matches!(event["Type"].as_str(), Some("ScheduleV2" | "Schedule")) {
                continue;
            }
            schedules += 1;
            let properties = &event["Properties"];
            assert!(
                properties["RetryPolicy"]["MaximumRetryAttempts"].is_number(),
                "{id}.{name}: a retry policy"
            );
            let queue = properties["DeadLetterConfig"]["Arn"]["Fn::GetAtt"][0]
                .as_str()
                .unwrap_or_else(|| panic!("{id}.{name}: no dead-letter queue of the stack's"));
            assert_ne!(
                queue, "InboundDeadLetterQueue",
                "{id}.{name}: its own queue"
            );
            let definition = &resources(&template)[queue];
            assert_eq!(definition["Type"], "AWS::SQS::Queue", "{queue}");
            assert_ne!(
                definition["Properties"]["FifoQueue"], true,
                "{queue}: Scheduler takes only a standard queue"
            );
            // Scheduler invokes asynchronously: a failed run goes to the function's own DLQ.
            assert_eq!(
                function["Properties"]["DeadLetterQueue"],
                json!({"Type": "SQS", "TargetArn": {"Fn::GetAtt": [queue, "Arn"]}}),
                "{id}: failed runs go to the same queue"
            );
            let alarms = alarms_on(
                &template,
                "AWS/SQS",
                "ApproximateNumberOfMessagesVisible",
                "QueueName",
                &json!({"Fn::GetAtt": [queue, "QueueName"]}),
            );
            assert_eq!(alarms.len(), 1, "{queue}: an alarm on its messages");
        }
    }
    assert_eq!(
        schedules, 3,
        "the SLA sweep, the off-hours run and the campaign dispatcher"
    );
}

/// `sam local` needs every function's SDK pointed at the local stack, and `--env-vars` only
/// overrides variables the template declares: the endpoint is declared, behind a parameter
/// whose empty default removes it, so a deploy sets no endpoint at all.
#[test]
fn the_local_endpoint_is_declared_for_sam_local_and_absent_from_a_deploy() {
    let template = template();
    let parameter = &template["Parameters"]["LocalEndpointUrl"];
    assert_eq!(parameter["Default"], "", "empty by default: {parameter}");
    assert_eq!(
        template["Conditions"]["UsesLocalEndpoint"],
        json!({"Fn::Not": [{"Fn::Equals": [{"Ref": "LocalEndpointUrl"}, ""]}]})
    );
    assert_eq!(
        template["Globals"]["Function"]["Environment"]["Variables"]["AWS_ENDPOINT_URL"],
        json!({"Fn::If": ["UsesLocalEndpoint", {"Ref": "LocalEndpointUrl"}, {"Ref": "AWS::NoValue"}]}),
        "every function gets the endpoint only when the parameter is set"
    );
    for (name, function) in of_type(&template, "AWS::Serverless::Function") {
        let own = &function["Properties"]["Environment"]["Variables"];
        assert!(
            own.get("AWS_ENDPOINT_URL").is_none(),
            "{name} sets its own AWS_ENDPOINT_URL"
        );
    }
}

/// People sign in to the platform API with accounts an admin made: no self sign-up, the
/// e-mail address as the user name, a strong password and MFA available to everyone.
#[test]
fn the_people_pool_is_admin_made_with_strong_passwords_and_optional_mfa() {
    let template = template();
    let pools = of_type(&template, "AWS::Cognito::UserPool");
    assert_eq!(pools.len(), 1, "one user pool");
    let pool = &pools[0].1["Properties"];
    assert_eq!(
        pool["AdminCreateUserConfig"]["AllowAdminCreateUserOnly"],
        true
    );
    assert_eq!(pool["UsernameAttributes"], json!(["email"]));
    let policy = &pool["Policies"]["PasswordPolicy"];
    assert!(
        policy["MinimumLength"].as_u64().is_some_and(|n| n >= 12),
        "{policy}"
    );
    for class in [
        "RequireLowercase",
        "RequireUppercase",
        "RequireNumbers",
        "RequireSymbols",
    ] {
        assert_eq!(policy[class], true, "{class}");
    }
    assert_eq!(pool["MfaConfiguration"], "OPTIONAL");
    assert!(
        strings(&pool["EnabledMfas"]).contains(&"SOFTWARE_TOKEN_MFA"),
        "an authenticator app: {}",
        pool["EnabledMfas"]
    );
    assert_eq!(pool["DeletionProtection"], "ACTIVE");
}

/// The app client is public (a browser or a script keeps no secret), signs in with the
/// password and refreshes, and its access tokens last an hour at most: the API accepts only
/// access tokens, so that bounds how long a signed-out person's token still works.
#[test]
fn the_app_client_is_public_with_password_and_refresh_flows_and_short_access_tokens() {
    let template = template();
    let clients = of_type(&template, "AWS::Cognito::UserPoolClient");
    assert_eq!(clients.len(), 1, "one app client");
    let client = &clients[0].1["Properties"];
    assert_eq!(client["UserPoolId"], json!({"Ref": "UserPool"}));
    assert_eq!(client["GenerateSecret"], false);
    let mut flows = strings(&client["ExplicitAuthFlows"]);
    flows.sort();
    assert_eq!(
        flows,
        ["ALLOW_REFRESH_TOKEN_AUTH", "ALLOW_USER_PASSWORD_AUTH"]
    );
    let minutes = match client["TokenValidityUnits"]["AccessToken"].as_str() {
        Some("minutes") => 1,
        Some("hours") => 60,
        other => panic!("the access token's unit: {other:?}"),
    };
    let lifetime = client["AccessTokenValidity"].as_u64().expect("a lifetime") * minutes;
    assert!(
        (5..=60).contains(&lifetime),
        "access tokens live {lifetime} minutes"
    );
    assert_eq!(client["PreventUserExistenceErrors"], "ENABLED");
}

/// The api function serves everything under /v1 of the stack's HTTP API, and checks people's
/// tokens against this stack's pool and client. It is told no keys' URL: on AWS that comes
/// from the issuer, and a configurable one would let a wrong setting trust any signer.
#[test]
fn the_api_function_serves_v1_and_trusts_only_this_stacks_pool_and_client() {
    let template = template();
    let function = &resources(&template)["ApiFunction"]["Properties"];
    assert_eq!(function["CodeUri"], "functions/api");
    let mut routes: Vec<(String, String)> = function["Events"]
        .as_object()
        .expect("the api's events")
        .values()
        .map(|event| {
            assert_eq!(event["Type"], "HttpApi", "{event}");
            assert_eq!(event["Properties"]["ApiId"], json!({"Ref": "HttpApi"}));
            let method = event["Properties"]["Method"].as_str().unwrap().to_owned();
            let path = event["Properties"]["Path"].as_str().unwrap().to_owned();
            (method, path)
        })
        .collect();
    routes.sort();
    assert_eq!(
        routes,
        [
            ("ANY".to_owned(), "/v1".to_owned()),
            ("ANY".to_owned(), "/v1/{proxy+}".to_owned())
        ]
    );

    let variables = &function["Environment"]["Variables"];
    assert_eq!(
        variables["COGNITO_ISSUER"],
        json!({"Fn::Sub": "https://cognito-idp.${AWS::Region}.amazonaws.com/${UserPool}"})
    );
    assert_eq!(
        variables["COGNITO_CLIENT_ID"],
        json!({"Ref": "UserPoolClient"})
    );
    assert_eq!(variables["TABLE_NAME"], json!({"Ref": "Table"}));
    assert_eq!(
        variables["HOOKS_SECRET_PREFIX"],
        json!({"Fn::Sub": "${AWS::StackName}/hooks/"}),
        "the subscriptions' secrets: the prefix the delivery function reads too"
    );
    assert!(
        variables.get("COGNITO_JWKS_URL").is_none(),
        "the keys' URL is derived from the issuer on AWS"
    );
    let globals = &template["Globals"]["Function"]["Environment"]["Variables"];
    assert_eq!(
        globals["INBOUND_QUEUE_URL"],
        json!({"Ref": "InboundQueue"}),
        "sends and erasures go to the inbound queue"
    );
}

/// Campaign audiences hold customers' numbers: the uploads' bucket is private to the
/// account, encrypted, reachable over TLS only, and forgets every upload after 7 days.
#[test]
fn the_campaign_uploads_bucket_is_private_encrypted_tls_only_and_forgets_in_7_days() {
    let template = template();
    let resources = resources(&template);
    let bucket = &resources["CampaignBucket"];
    assert_eq!(bucket["Type"], "AWS::S3::Bucket");
    let properties = &bucket["Properties"];
    let block = &properties["PublicAccessBlockConfiguration"];
    for setting in [
        "BlockPublicAcls",
        "BlockPublicPolicy",
        "IgnorePublicAcls",
        "RestrictPublicBuckets",
    ] {
        assert_eq!(block[setting], true, "{setting}");
    }
    let encryption = &properties["BucketEncryption"]["ServerSideEncryptionConfiguration"][0];
    assert!(
        encryption["ServerSideEncryptionByDefault"]["SSEAlgorithm"].is_string(),
        "{encryption}"
    );
    let rules = properties["LifecycleConfiguration"]["Rules"]
        .as_array()
        .expect("lifecycle rules");
    assert!(
        rules.iter().any(|rule| rule["Status"] == "Enabled"
            && rule["ExpirationInDays"] == 7
            && rule.get("Prefix").is_none()),
        "{rules:?}"
    );
    let policy = &resources["CampaignBucketPolicy"]["Properties"];
    assert_eq!(policy["Bucket"], json!({"Ref": "CampaignBucket"}));
    let statements = policy["PolicyDocument"]["Statement"].as_array().unwrap();
    assert!(
        statements
            .iter()
            .any(|statement| statement["Effect"] == "Deny"
                && statement["Condition"]["Bool"]["aws:SecureTransport"] == false),
        "{statements:?}"
    );
    let api = &resources["ApiFunction"]["Properties"]["Environment"]["Variables"];
    assert_eq!(api["CAMPAIGN_BUCKET"], json!({"Ref": "CampaignBucket"}));
}

/// The hooks queue: standard, redelivered after 6x the delivery's timeout, kept 2 days (what
/// the delivery's horizon assumes), with a dead-letter queue that has an alarm; the delivery
/// reads it on arm64 in batches of 10 reporting single failures, at a bounded concurrency.
#[test]
fn the_hooks_queue_feeds_the_delivery_with_partial_failures_and_dead_letters_with_an_alarm() {
    let template = template();
    let resources = resources(&template);
    let queue = &resources["HooksQueue"]["Properties"];
    let function = &resources["HookDeliveryFunction"]["Properties"];
    assert_ne!(queue["FifoQueue"], true, "a standard queue");
    assert_eq!(queue["MessageRetentionPeriod"], 2 * 24 * 3600);
    let timeout = function["Timeout"]
        .as_u64()
        .expect("the delivery's timeout");
    assert_eq!(queue["VisibilityTimeout"].as_u64(), Some(6 * timeout));
    assert_eq!(
        queue["RedrivePolicy"]["deadLetterTargetArn"],
        json!({"Fn::GetAtt": ["HooksDeadLetterQueue", "Arn"]})
    );
    let dead_letters = &resources["HooksDeadLetterQueue"]["Properties"];
    assert!(
        dead_letters["MessageRetentionPeriod"].as_u64().unwrap() <= 3 * 24 * 3600,
        "events hold customer text: not kept past the oldest a delivery sends"
    );
    let alarms = alarms_on(
        &template,
        "AWS/SQS",
        "ApproximateNumberOfMessagesVisible",
        "QueueName",
        &json!({"Fn::GetAtt": ["HooksDeadLetterQueue", "QueueName"]}),
    );
    assert_eq!(alarms.len(), 1);
    assert!(
        alarms[0]["AlarmActions"]
            .as_array()
            .is_some_and(|a| a.contains(&json!({"Ref": "AlarmTopic"})))
    );

    let architectures = function
        .get("Architectures")
        .unwrap_or(&template["Globals"]["Function"]["Architectures"]);
    assert_eq!(architectures, &json!(["arm64"]));
    assert_eq!(function["CodeUri"], "functions/hook-delivery");
    let events: Vec<&Value> = function["Events"]
        .as_object()
        .expect("the delivery's events")
        .values()
        .collect();
    assert_eq!(events.len(), 1);
    let source = &events[0]["Properties"];
    assert_eq!(events[0]["Type"], "SQS");
    assert_eq!(
        source["Queue"],
        json!({"Fn::GetAtt": ["HooksQueue", "Arn"]})
    );
    assert_eq!(source["BatchSize"], 10);
    assert_eq!(
        source["FunctionResponseTypes"],
        json!(["ReportBatchItemFailures"])
    );
    let bound = source["ScalingConfig"]["MaximumConcurrency"]["Ref"]
        .as_str()
        .expect("a parameter");
    assert_eq!(template["Parameters"][bound]["Type"], "Number");
    let variables = &function["Environment"]["Variables"];
    assert_eq!(variables["HOOKS_QUEUE_URL"], json!({"Ref": "HooksQueue"}));
    assert_eq!(
        variables["SLA_ALERT_TOPIC_ARN"],
        json!({"Ref": "SlaAlertTopic"})
    );
    assert_eq!(
        template["Outputs"]["HooksQueueUrl"]["Value"],
        json!({"Ref": "HooksQueue"})
    );
}

/// The worker publishes events out: it is told the hooks queue and may only send to it.
#[test]
fn the_worker_may_send_to_the_hooks_queue_and_to_no_other_queue() {
    let template = template();
    let resources = resources(&template);
    let worker = &resources["WorkerFunction"]["Properties"];
    assert_eq!(
        worker["Environment"]["Variables"]["HOOKS_QUEUE_URL"],
        json!({"Ref": "HooksQueue"})
    );
    let statements: Vec<&Value> = worker["Policies"]
        .as_array()
        .into_iter()
        .flatten()
        .flat_map(|policy| policy["Statement"].as_array().into_iter().flatten())
        .collect();
    let sends: Vec<&&Value> = statements
        .iter()
        .filter(|statement| statement["Action"].to_string().contains("sqs:"))
        .collect();
    assert_eq!(sends.len(), 1, "{sends:?}");
    assert_eq!(sends[0]["Action"], "sqs:SendMessage");
    assert_eq!(
        sends[0]["Resource"],
        json!({"Fn::GetAtt": ["HooksQueue", "Arn"]})
    );
}
