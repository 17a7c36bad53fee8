//! Rate limits shared by every container: one counter item per caller and minute,
//! incremented by a conditional update (HTTP APIs have no usage plans). A refused call still
//! costs the write; the item expires a minute after its window.

use aws_sdk_dynamodb::error::SdkError;
use aws_sdk_dynamodb::operation::update_item::UpdateItemError;
use aws_sdk_dynamodb::types::{AttributeValue, ReturnValue};
use chrono::{DateTime, Utc};

use super::{Db, PlatformError};
use crate::store::keys::{PK, SK};

const WINDOW_SECONDS: i64 = 60;

#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub enum Verdict {
    Allowed {
        remaining: u32,
    },
    /// Over the limit until the window ends.
    Limited {
        retry_after_seconds: i64,
    },
}

/// Counts one call of `subject` (`key:<id>`, `person:<sub>`, `ip:<address>`) against `limit`
/// calls a minute.
pub async fn hit(
    db: &Db,
    subject: &str,
    limit: u32,
    now: DateTime<Utc>,
) -> Result<Verdict, PlatformError> {
    let window = now.timestamp().div_euclid(WINDOW_SECONDS);
    let window_end = (window + 1) * WINDOW_SECONDS;
    let answer = db
        .client
        .update_item()
        .table_name(&db.table)
        .key(PK, AttributeValue::S(format!("RL#{subject}")))
        .key(SK, AttributeValue::S(format!("W#{window}")))
        .update_expression("ADD #count :one SET expires_at = if_not_exists(expires_at, :expires)")
        .condition_expression("attribute_not_exists(#count) OR #count < :limit")
        .expression_attribute_names("#count", "count")
        .expression_attribute_values(":one", AttributeValue::N("1".into()))
        .expression_attribute_values(":limit", AttributeValue::N(limit.to_string()))
        .expression_attribute_values(
            ":expires",
            AttributeValue::N((window_end + WINDOW_SECONDS).to_string()),
        )
        .return_values(ReturnValue::UpdatedNew)
        .send()
        .await;
    match answer {
        Ok(updated) => {
            let count = updated
                .attributes()
                .and_then(|a| a.get("count"))
                .and_then(|v| v.as_n().ok())
                .and_then(|n| n.parse::<u32>().ok())
                .unwrap_or(limit);
            Ok(Verdict::Allowed {
                remaining: limit.saturating_sub(count),
            })
        }
        Err(SdkError::ServiceError(error))
            if matches!(
                error.err(),
                UpdateItemError::ConditionalCheckFailedException(_)
            ) =>
        {
            Ok(Verdict::Limited {
                retry_after_seconds: (window_end - now.timestamp()).max(1),
            })
        }
        Err(error) => Err(PlatformError::database(error)),
    }
}
