//! template.yaml's secret grants: each function can read only its own secrets, and no
//! grant's pattern matches another function's secret (IAM's `*` spans `/`, and Secrets
//! Manager appends `-XXXXXX` to every secret's ARN).

use std::collections::BTreeMap;

use serde_yaml_ng::Value;

const SECRET_ARN: &str =
    "arn:${AWS::Partition}:secretsmanager:${AWS::Region}:${AWS::AccountId}:secret:";

fn template() -> Value {
    let path = concat!(env!("CARGO_MANIFEST_DIR"), "/../template.yaml");
    serde_yaml_ng::from_str(&std::fs::read_to_string(path).unwrap()).unwrap()
}

/// A value as written in the template: `!Ref X`, `!Sub text`, or the plain string.
fn text(value: &Value) -> String {
    match value {
        Value::Tagged(tagged) => format!("{} {}", tagged.tag, text(&tagged.value)),
        Value::String(s) => s.clone(),
        other => serde_yaml_ng::to_string(other).unwrap().trim().to_owned(),
    }
}

fn list(value: &Value) -> Vec<&Value> {
    match value {
        Value::Sequence(items) => items.iter().collect(),
        Value::Null => Vec::new(),
        one => vec![one],
    }
}

/// Every resource of a function's policies that a Secrets Manager action (or `*`) is
/// allowed on, as written.
fn secret_grants(function: &Value) -> Vec<String> {
    let mut grants = Vec::new();
    for policy in list(&function["Properties"]["Policies"]) {
        assert!(
            policy.is_mapping(),
            "only inline statements, no managed policy: {policy:?}"
        );
        for statement in list(&policy["Statement"]) {
            let reads_secrets = list(&statement["Action"]).iter().any(|action| {
                let action = text(action);
                action == "*" || action.starts_with("secretsmanager:")
            });
            if reads_secrets {
                assert_eq!(text(&statement["Effect"]), "Allow");
                grants.extend(list(&statement["Resource"]).into_iter().map(text));
            }
        }
    }
    grants.sort();
    grants
}

/// IAM's wildcard match: `*` is any run of characters, `/` included.
fn matches(pattern: &str, arn: &str) -> bool {
    let mut parts = pattern.split('*');
    let first = parts.next().unwrap_or_default();
    let Some(mut rest) = arn.strip_prefix(first) else {
        return false;
    };
    let parts: Vec<&str> = parts.collect();
    for (i, part) in parts.iter().enumerate() {
        if i == parts.len() - 1 {
            return rest.ends_with(part);
        }
        match rest.find(part) {
            Some(at) => rest = &rest[at + part.len()..],
            None => return false,
        }
    }
    rest.is_empty()
}

#[test]
fn each_function_reads_only_its_own_secrets() {
    let template = template();
    let resources = template["Resources"].as_mapping().unwrap();
    let functions: BTreeMap<String, Vec<String>> = resources
        .iter()
        .filter(|(_, r)| text(&r["Type"]) == "AWS::Serverless::Function")
        .map(|(id, r)| (text(id), secret_grants(r)))
        .collect();
    let tenants = format!("!Sub {SECRET_ARN}${{AWS::StackName}}/tenants/*");
    let desk = format!("!Sub {SECRET_ARN}${{AWS::StackName}}/desk/*");
    let hooks = format!("!Sub {SECRET_ARN}${{AWS::StackName}}/hooks/*");
    for (function, grants) in &functions {
        let expected: Vec<String> = match function.as_str() {
            "WebhookFunction" => vec!["!Ref AppSecret".into()],
            "WorkerFunction" => vec!["!Ref AiSecret".into(), tenants.clone()],
            "CampaignSenderFunction" => vec![tenants.clone()],
            "DeskFunction" => vec![desk.clone()],
            "HookDeliveryFunction" => vec![hooks.clone()],
            "ApiFunction" => vec!["!Ref ApiSecret".into(), hooks.clone()],
            _ => Vec::new(),
        };
        assert_eq!(grants, &expected, "{function}");
    }
    for function in [
        "DeskFunction",
        "WebhookFunction",
        "WorkerFunction",
        "ApiFunction",
        "HookDeliveryFunction",
    ] {
        assert!(functions.contains_key(function), "{function}");
    }

    assert_eq!(
        text(&resources[&Value::from("AppSecret")]["Properties"]["Name"]),
        "!Sub ${AWS::StackName}/app"
    );
    assert_eq!(
        text(&resources[&Value::from("AiSecret")]["Properties"]["Name"]),
        "!Sub ${AWS::StackName}/ai"
    );
    assert_eq!(
        text(&resources[&Value::from("ApiSecret")]["Properties"]["Name"]),
        "!Sub ${AWS::StackName}/api"
    );
}

#[test]
fn no_wildcard_grant_covers_another_readers_secret() {
    let stack = "${AWS::StackName}";
    let arn = |name: &str| format!("{SECRET_ARN}{stack}/{name}-AbCdEf");
    let tenants = format!("{SECRET_ARN}{stack}/tenants/*");
    let desk = format!("{SECRET_ARN}{stack}/desk/*");
    let hooks = format!("{SECRET_ARN}{stack}/hooks/*");
    assert!(matches(&tenants, &arn("tenants/106540352242922")));
    assert!(matches(&hooks, &arn("hooks/106540352242922")));
    for other in [
        "app",
        "ai",
        "api",
        "tenants/106540352242922",
        "desk/106540352242922",
        "hooks-other/1",
    ] {
        assert!(!matches(&hooks, &arn(other)), "{other}");
    }
    assert!(matches(&desk, &arn("desk/106540352242922")));
    for other in ["app", "ai", "api", "desk/106540352242922", "tenantsx/1"] {
        assert!(!matches(&tenants, &arn(other)), "{other}");
    }
    for other in [
        "app",
        "ai",
        "api",
        "tenants/106540352242922",
        "desk-other/1",
    ] {
        assert!(!matches(&desk, &arn(other)), "{other}");
    }
    for other in ["tenants/1", "desk/1", "hooksx/1"] {
        assert!(!matches(&hooks, &arn(other)), "{other}");
    }
    for pattern in [&tenants, &desk] {
        assert!(
            !matches(pattern, &arn("hooks/106540352242922")),
            "{pattern}"
        );
    }
    // The template's grants are exactly these patterns (the other test), so the worker
    // cannot read a desk secret, the desk cannot read a tenant's tokens, and the hook
    // delivery reads only the subscriptions' signing secrets.
}

#[test]
fn each_function_is_told_only_its_own_secrets() {
    let template = template();
    let globals = &template["Globals"]["Function"]["Environment"]["Variables"];
    let global_secrets: Vec<String> = globals
        .as_mapping()
        .unwrap()
        .keys()
        .map(text)
        .filter(|name| name.contains("SECRET"))
        .collect();
    assert_eq!(
        global_secrets,
        Vec::<String>::new(),
        "no secret for every function"
    );
    let variables = |function: &str| {
        let variables = &template["Resources"][function]["Properties"]["Environment"]["Variables"];
        let mut secrets: Vec<(String, String)> = variables
            .as_mapping()
            .map(|m| {
                m.iter()
                    .map(|(k, v)| (text(k), text(v)))
                    .filter(|(k, _)| k.contains("SECRET"))
                    .collect()
            })
            .unwrap_or_default();
        secrets.sort();
        secrets
    };
    assert_eq!(
        variables("WebhookFunction"),
        [("APP_SECRET_ID".to_owned(), "!Ref AppSecret".to_owned())]
    );
    assert_eq!(
        variables("WorkerFunction"),
        [
            ("AI_SECRET_ID".to_owned(), "!Ref AiSecret".to_owned()),
            (
                "TENANT_SECRET_PREFIX".to_owned(),
                "!Sub ${AWS::StackName}/tenants/".to_owned()
            )
        ]
    );
    assert_eq!(
        variables("ApiFunction"),
        [
            ("API_SECRET_ID".to_owned(), "!Ref ApiSecret".to_owned()),
            (
                "HOOKS_SECRET_PREFIX".to_owned(),
                "!Sub ${AWS::StackName}/hooks/".to_owned()
            )
        ]
    );
    assert_eq!(
        variables("DeskFunction"),
        [(
            "DESK_SECRET_PREFIX".to_owned(),
            "!Sub ${AWS::StackName}/desk/".to_owned()
        )]
    );
    assert_eq!(
        variables("HookDeliveryFunction"),
        [(
            "HOOKS_SECRET_PREFIX".to_owned(),
            "!Sub ${AWS::StackName}/hooks/".to_owned()
        )]
    );
}

/// Every statement of a function's inline policies: (actions, resources), as written.
fn statements(function: &Value) -> Vec<(Vec<String>, Vec<String>)> {
    list(&function["Properties"]["Policies"])
        .into_iter()
        .flat_map(|policy| list(&policy["Statement"]))
        .map(|statement| {
            assert_eq!(text(&statement["Effect"]), "Allow", "{statement:?}");
            assert!(
                statement.get("NotAction").is_none() && statement.get("NotResource").is_none(),
                "{statement:?}"
            );
            let mut actions: Vec<String> =
                list(&statement["Action"]).into_iter().map(text).collect();
            actions.sort();
            let mut resources: Vec<String> =
                list(&statement["Resource"]).into_iter().map(text).collect();
            resources.sort();
            (actions, resources)
        })
        .collect()
}

/// The api function works on the table's items (no scan, no table or stream administration),
/// queues to the inbound queue only, reads its own secret and keeps the tenants' hooks
/// secrets (create, read, write: never delete, list or change a policy), writes and reads
/// campaign uploads (under `uploads/` of their bucket) only, and may only look up and
/// invite people in the pool (no password, MFA or deletion): a leaked API process cannot
/// read a tenant's WhatsApp or Chatwoot tokens, Meta's app secret or the AI key.
#[test]
fn the_api_function_gets_table_items_the_inbound_queue_its_own_secrets_and_invitations_only() {
    let template = template();
    let granted = statements(&template["Resources"]["ApiFunction"]);
    let item_actions = [
        "dynamodb:BatchGetItem",
        "dynamodb:BatchWriteItem",
        "dynamodb:ConditionCheckItem",
        "dynamodb:DeleteItem",
        "dynamodb:GetItem",
        "dynamodb:PutItem",
        "dynamodb:Query",
        "dynamodb:UpdateItem",
    ];
    let expected: Vec<(Vec<String>, Vec<String>)> = vec![
        (
            item_actions.iter().map(|a| a.to_string()).collect(),
            vec![
                "!GetAtt Table.Arn".to_owned(),
                "!Sub ${Table.Arn}/index/*".to_owned(),
            ],
        ),
        (
            vec!["sqs:SendMessage".to_owned()],
            vec!["!GetAtt InboundQueue.Arn".to_owned()],
        ),
        (
            vec!["secretsmanager:GetSecretValue".to_owned()],
            vec!["!Ref ApiSecret".to_owned()],
        ),
        (
            vec![
                "secretsmanager:CreateSecret".to_owned(),
                "secretsmanager:GetSecretValue".to_owned(),
                "secretsmanager:PutSecretValue".to_owned(),
            ],
            vec![format!("!Sub {SECRET_ARN}${{AWS::StackName}}/hooks/*")],
        ),
        (
            vec!["s3:GetObject".to_owned(), "s3:PutObject".to_owned()],
            vec!["!Sub ${CampaignBucket.Arn}/uploads/*".to_owned()],
        ),
        (
            vec![
                "cognito-idp:AdminCreateUser".to_owned(),
                "cognito-idp:AdminGetUser".to_owned(),
            ],
            vec!["!GetAtt UserPool.Arn".to_owned()],
        ),
    ];
    assert_eq!(granted, expected);

    let tenant_secret = format!("{SECRET_ARN}${{AWS::StackName}}/tenants/106540352242922-AbCdEf");
    let desk_secret = format!("{SECRET_ARN}${{AWS::StackName}}/desk/106540352242922-AbCdEf");
    for (actions, resources) in &granted {
        for action in actions {
            assert!(!action.contains('*'), "a wildcard action: {action}");
        }
        for resource in resources {
            let pattern = resource.trim_start_matches("!Sub ");
            for secret in [&tenant_secret, &desk_secret] {
                assert!(!matches(pattern, secret), "{resource} covers {secret}");
            }
        }
    }
}

/// The hook delivery reads and writes only the subscriptions (and the tenant's summary
/// beside them), their delivery log and the erased customers, with the actions it uses;
/// queues only its own retries, reads only the hooks secrets and publishes only the alert
/// topic: a subscriber that found a way into the process reaches no conversation, no
/// tenant token and no other queue.
#[test]
fn the_hook_delivery_gets_its_items_its_queue_its_secrets_and_the_alert_topic_only() {
    let template = template();
    let function = &template["Resources"]["HookDeliveryFunction"];
    let granted = statements(function);
    let expected: Vec<(Vec<String>, Vec<String>)> = vec![
        (
            [
                "dynamodb:BatchGetItem",
                "dynamodb:GetItem",
                "dynamodb:PutItem",
                "dynamodb:Query",
                "dynamodb:UpdateItem",
            ]
            .iter()
            .map(|a| a.to_string())
            .collect(),
            vec!["!GetAtt Table.Arn".to_owned()],
        ),
        (
            vec!["secretsmanager:GetSecretValue".to_owned()],
            vec![format!("!Sub {SECRET_ARN}${{AWS::StackName}}/hooks/*")],
        ),
        (
            vec!["sns:Publish".to_owned()],
            vec!["!Ref SlaAlertTopic".to_owned()],
        ),
        (
            vec!["sqs:SendMessage".to_owned()],
            vec!["!GetAtt HooksQueue.Arn".to_owned()],
        ),
    ];
    assert_eq!(granted, expected);
    let table_statement = list(&function["Properties"]["Policies"])
        .into_iter()
        .flat_map(|policy| list(&policy["Statement"]))
        .find(|statement| text(&statement["Resource"]) == "!GetAtt Table.Arn")
        .expect("the table statement");
    let leading: Vec<String> =
        list(&table_statement["Condition"]["ForAllValues:StringLike"]["dynamodb:LeadingKeys"])
            .into_iter()
            .map(text)
            .collect();
    assert_eq!(leading, ["TENANT#*", "HOOKLOG#*", "ERASED#*"]);
}
