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
/// queued events or the secrets with it.
#[test]
fn the_table_the_inbound_queues_and_the_secrets_are_retained() {
    let template = template();
    let mut stateful: Vec<&String> = ["AWS::DynamoDB::Table", "AWS::SecretsManager::Secret"]
        .iter()
        .flat_map(|kind| of_type(&template, kind))
        .map(|(id, _)| id)
        .collect();
    let queues = ["InboundQueue", "InboundDeadLetterQueue"];
    for queue in queues {
        let (id, _) = resources(&template)
            .get_key_value(queue)
            .unwrap_or_else(|| panic!("no {queue}"));
        stateful.push(id);
    }
    assert!(stateful.len() >= 4, "table, queues, secrets: {stateful:?}");
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
    assert_eq!(schedules, 2, "the SLA sweep and the off-hours run");
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
