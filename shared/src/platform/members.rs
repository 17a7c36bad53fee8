//! People and their roles: platform admins, and members of tenants with a role. Kept in the
//! table, not in Cognito groups, so a change or removal applies at the next call and the
//! local stack behaves like AWS.
//!
//! Items: `MEMBER#<sub>`/`PLATFORM` or `TENANT#<pn>` (what authentication reads: one Query
//! per call) and `MEMBERS#<owner>`/`<sub>` (the owner's list).

use std::collections::{BTreeMap, HashMap};

use aws_sdk_cognitoidentityprovider::types::{AttributeType, DeliveryMediumType};
use aws_sdk_dynamodb::types::{AttributeValue, Delete, Put, TransactWriteItem};
use chrono::{DateTime, Utc};
use serde::Serialize;

use super::access::{Owner, Role};
use super::{Continuation, Db, Page, PlatformError};
use crate::store::keys::{PK, SK};

#[derive(Debug, Clone, PartialEq, Eq, Serialize)]
pub struct Member {
    pub sub: String,
    pub email: String,
    /// For the platform, always `admin`.
    pub role: Role,
    pub added_by: String,
    pub added_at: DateTime<Utc>,
}

/// What a person may do: platform admin, and their tenants with a role each.
#[derive(Debug, Clone, Default, PartialEq, Eq)]
pub struct Memberships {
    pub platform_admin: bool,
    pub tenants: BTreeMap<String, Role>,
}

fn own_key(owner: &Owner) -> String {
    match owner {
        Owner::Platform => "PLATFORM".to_owned(),
        Owner::Tenant(tenant) => format!("TENANT#{tenant}"),
    }
}

fn key(pk: String, sk: String) -> HashMap<String, AttributeValue> {
    [
        (PK.to_owned(), AttributeValue::S(pk)),
        (SK.to_owned(), AttributeValue::S(sk)),
    ]
    .into()
}

pub async fn memberships(db: &Db, sub: &str) -> Result<Memberships, PlatformError> {
    let found = db
        .client
        .query()
        .table_name(&db.table)
        .key_condition_expression("pk = :pk")
        .expression_attribute_values(":pk", AttributeValue::S(format!("MEMBER#{sub}")))
        .consistent_read(true)
        .send()
        .await
        .map_err(PlatformError::database)?;
    let mut memberships = Memberships::default();
    for item in found.items() {
        let sk = item
            .get(SK)
            .and_then(|v| v.as_s().ok())
            .map(String::as_str)
            .unwrap_or("");
        let role = item
            .get("role")
            .and_then(|v| v.as_s().ok())
            .and_then(|r| r.parse::<Role>().ok());
        match (sk, role) {
            ("PLATFORM", Some(Role::Admin)) => memberships.platform_admin = true,
            (sk, Some(role)) => {
                if let Some(tenant) = sk.strip_prefix("TENANT#") {
                    memberships.tenants.insert(tenant.to_owned(), role);
                }
            }
            _ => {}
        }
    }
    Ok(memberships)
}

/// Adds `sub` to `owner` with `role` (or changes its role).
pub async fn put(db: &Db, owner: &Owner, member: &Member) -> Result<(), PlatformError> {
    let fields = [
        ("email", AttributeValue::S(member.email.clone())),
        ("role", AttributeValue::S(member.role.as_str().to_owned())),
        ("added_by", AttributeValue::S(member.added_by.clone())),
        ("added_at", AttributeValue::S(member.added_at.to_rfc3339())),
    ];
    let put =
        |mut item: HashMap<String, AttributeValue>| -> Result<TransactWriteItem, PlatformError> {
            item.extend(
                fields
                    .iter()
                    .map(|(name, value)| ((*name).to_owned(), value.clone())),
            );
            let put = Put::builder()
                .table_name(&db.table)
                .set_item(Some(item))
                .build()
                .map_err(PlatformError::database)?;
            Ok(TransactWriteItem::builder().put(put).build())
        };
    db.client
        .transact_write_items()
        .transact_items(put(key(format!("MEMBER#{}", member.sub), own_key(owner)))?)
        .transact_items(put(key(
            format!("MEMBERS#{}", owner.key()),
            member.sub.clone(),
        ))?)
        .send()
        .await
        .map_err(PlatformError::database)?;
    Ok(())
}

/// Removes `sub` from `owner`: [`PlatformError::NotFound`] when it was not a member.
pub async fn remove(db: &Db, owner: &Owner, sub: &str) -> Result<(), PlatformError> {
    let delete =
        |key: HashMap<String, AttributeValue>| -> Result<TransactWriteItem, PlatformError> {
            let delete = Delete::builder()
                .table_name(&db.table)
                .set_key(Some(key))
                .condition_expression("attribute_exists(pk)")
                .build()
                .map_err(PlatformError::database)?;
            Ok(TransactWriteItem::builder().delete(delete).build())
        };
    let result = db
        .client
        .transact_write_items()
        .transact_items(delete(key(format!("MEMBER#{sub}"), own_key(owner)))?)
        .transact_items(delete(key(
            format!("MEMBERS#{}", owner.key()),
            sub.to_owned(),
        ))?)
        .send()
        .await;
    match result {
        Ok(_) => Ok(()),
        Err(error) if format!("{error:?}").contains("ConditionalCheckFailed") => {
            Err(PlatformError::NotFound)
        }
        Err(error) => Err(PlatformError::database(error)),
    }
}

pub async fn list(
    db: &Db,
    owner: &Owner,
    limit: i32,
    from: Option<&Continuation>,
) -> Result<Page<Member>, PlatformError> {
    let page = db
        .client
        .query()
        .table_name(&db.table)
        .key_condition_expression("pk = :pk")
        .expression_attribute_values(":pk", AttributeValue::S(format!("MEMBERS#{}", owner.key())))
        .limit(limit)
        .set_exclusive_start_key(from.map(Continuation::start_key))
        .send()
        .await
        .map_err(PlatformError::database)?;
    let text = |item: &HashMap<String, AttributeValue>, name: &str| {
        item.get(name).and_then(|v| v.as_s().ok()).cloned()
    };
    let items = page
        .items()
        .iter()
        .map(|item| {
            let read = || {
                Some(Member {
                    sub: text(item, SK)?,
                    email: text(item, "email").unwrap_or_default(),
                    role: text(item, "role")?.parse().ok()?,
                    added_by: text(item, "added_by").unwrap_or_default(),
                    added_at: DateTime::parse_from_rfc3339(&text(item, "added_at")?)
                        .ok()?
                        .with_timezone(&Utc),
                })
            };
            read().ok_or_else(|| PlatformError::Database("a member item is not readable".into()))
        })
        .collect::<Result<_, _>>()?;
    Ok(Page {
        items,
        next: Continuation::from_last_evaluated(page.last_evaluated_key()),
    })
}

/// The people directory (the stack's Cognito user pool): finds a person by e-mail, or
/// invites them (Cognito e-mails a temporary password).
#[derive(Clone, Debug)]
pub struct Directory {
    pub client: aws_sdk_cognitoidentityprovider::Client,
    pub user_pool_id: String,
}

pub const MAX_EMAIL: usize = 254;

pub fn validate_email(email: &str) -> Result<String, PlatformError> {
    let email = email.trim().to_lowercase();
    // The common form every mail system and Cognito take: letters, digits and `._%+-`
    // before the `@`; dot-separated labels of letters, digits and inner hyphens after it.
    let local_ok = |local: &str| {
        !local.is_empty()
            && !local.starts_with('.')
            && !local.ends_with('.')
            && !local.contains("..")
            && local
                .chars()
                .all(|c| c.is_ascii_alphanumeric() || "._%+-".contains(c))
    };
    let label_ok = |label: &str| {
        !label.is_empty()
            && !label.starts_with('-')
            && !label.ends_with('-')
            && label.chars().all(|c| c.is_ascii_alphanumeric() || c == '-')
    };
    let valid = email.len() <= MAX_EMAIL
        && email.split_once('@').is_some_and(|(local, domain)| {
            local_ok(local) && domain.contains('.') && domain.split('.').all(label_ok)
        });
    if valid {
        Ok(email)
    } else {
        Err(PlatformError::invalid("/email", "an e-mail address"))
    }
}

/// The pool refusing the address is the caller's error; anything else is the pool's.
fn cognito_error<E: std::fmt::Debug + std::fmt::Display>(error: E) -> PlatformError {
    if format!("{error:?}").contains("InvalidParameter") {
        PlatformError::invalid("/email", "an e-mail address the user pool takes")
    } else {
        PlatformError::Database(format!("cognito: {error}"))
    }
}

impl Directory {
    /// The person's `sub`, inviting them first when the pool has no such user.
    pub async fn find_or_invite(&self, email: &str) -> Result<String, PlatformError> {
        let found = self
            .client
            .admin_get_user()
            .user_pool_id(&self.user_pool_id)
            .username(email)
            .send()
            .await;
        let attributes = match found {
            Ok(user) => user.user_attributes.unwrap_or_default(),
            Err(error) if format!("{error:?}").contains("UserNotFound") => self
                .client
                .admin_create_user()
                .user_pool_id(&self.user_pool_id)
                .username(email)
                .user_attributes(
                    AttributeType::builder()
                        .name("email")
                        .value(email)
                        .build()
                        .map_err(PlatformError::database)?,
                )
                .user_attributes(
                    AttributeType::builder()
                        .name("email_verified")
                        .value("true")
                        .build()
                        .map_err(PlatformError::database)?,
                )
                .desired_delivery_mediums(DeliveryMediumType::Email)
                .send()
                .await
                .map_err(cognito_error)?
                .user
                .and_then(|user| user.attributes)
                .unwrap_or_default(),
            Err(error) => return Err(cognito_error(error)),
        };
        attributes
            .iter()
            .find(|attribute| attribute.name() == "sub")
            .and_then(|attribute| attribute.value().map(str::to_owned))
            .ok_or_else(|| PlatformError::Database("cognito: the user has no sub".into()))
    }
}

#[cfg(test)]
mod tests {
    use super::validate_email;

    #[test]
    fn addresses_in_the_common_form_are_taken_lowercased() {
        for (given, kept) in [
            (
                " Ana.Souza+desk@Loja-B.example.com ",
                "ana.souza+desk@loja-b.example.com",
            ),
            ("o_k%1@a.io", "o_k%1@a.io"),
        ] {
            assert_eq!(validate_email(given).unwrap(), kept);
        }
        for wrong in [
            "",
            "ana",
            "@loja.example",
            "ana@localhost",
            "!70ha7-/m@j2q702.dev",
            ".ana@loja.example",
            "ana..souza@loja.example",
            "ana@-loja.example",
            "ana@loja..example",
            "ana souza@loja.example",
            "ána@loja.example",
        ] {
            assert!(validate_email(wrong).is_err(), "{wrong:?}");
        }
    }
}
