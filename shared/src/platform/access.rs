//! Who calls the platform API and what each caller may do: one authorization model for
//! machines (API keys with scopes) and people (Cognito accounts with roles per tenant).
//!
//! A tenant the caller may not see is [`Access::Hidden`]: the API answers it exactly like a
//! tenant that does not exist, so a caller learns nothing about other tenants.

use std::collections::BTreeMap;
use std::fmt;
use std::str::FromStr;

use serde::{Deserialize, Serialize};

/// What an API key may do. `admin` includes `read`, `send` and `hooks:manage`; approving a
/// campaign is never a key's scope (people only).
#[derive(Debug, Clone, Copy, PartialEq, Eq, PartialOrd, Ord, Hash, Serialize, Deserialize)]
pub enum Scope {
    #[serde(rename = "read")]
    Read,
    #[serde(rename = "send")]
    Send,
    #[serde(rename = "admin")]
    Admin,
    #[serde(rename = "campaigns:write")]
    CampaignsWrite,
    #[serde(rename = "hooks:manage")]
    HooksManage,
}

impl Scope {
    pub const ALL: [Scope; 5] = [
        Scope::Read,
        Scope::Send,
        Scope::Admin,
        Scope::CampaignsWrite,
        Scope::HooksManage,
    ];

    pub fn as_str(self) -> &'static str {
        match self {
            Scope::Read => "read",
            Scope::Send => "send",
            Scope::Admin => "admin",
            Scope::CampaignsWrite => "campaigns:write",
            Scope::HooksManage => "hooks:manage",
        }
    }
}

impl FromStr for Scope {
    type Err = String;
    fn from_str(text: &str) -> Result<Self, String> {
        Scope::ALL
            .into_iter()
            .find(|scope| scope.as_str() == text)
            .ok_or_else(|| {
                format!("unknown scope `{text}` (read, send, admin, campaigns:write, hooks:manage)")
            })
    }
}

/// A person's role in one tenant.
#[derive(Debug, Clone, Copy, PartialEq, Eq, PartialOrd, Ord, Hash, Serialize, Deserialize)]
#[serde(rename_all = "snake_case")]
pub enum Role {
    /// Answers customers: reads the tenant's data and sends.
    Agent,
    /// An agent who also runs campaigns and approves other people's.
    Supervisor,
    /// Manages the tenant: configuration, keys, members, the customers' data rights.
    Admin,
}

impl Role {
    pub fn as_str(self) -> &'static str {
        match self {
            Role::Agent => "agent",
            Role::Supervisor => "supervisor",
            Role::Admin => "admin",
        }
    }
}

impl FromStr for Role {
    type Err = String;
    fn from_str(text: &str) -> Result<Self, String> {
        match text {
            "agent" => Ok(Role::Agent),
            "supervisor" => Ok(Role::Supervisor),
            "admin" => Ok(Role::Admin),
            _ => Err(format!("unknown role `{text}` (agent, supervisor, admin)")),
        }
    }
}

/// What a route needs of its caller.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub enum Need {
    /// Read the tenant's conversations, queue, reports.
    Read,
    /// Send to the tenant's customers.
    Send,
    /// Change the tenant's configuration, keys, members; export and erase customer data.
    Admin,
    /// Write the tenant's campaigns (create, upload, submit).
    CampaignsWrite,
    /// Read and change the tenant's event subscriptions (their URLs may carry the
    /// subscriber's own tokens, and they receive customers' messages).
    HooksManage,
    /// Approve a campaign: people only (supervisors and admins).
    Approve,
    /// The provider's own business: every tenant, platform keys and admins.
    Platform,
}

/// Whose an API key, audit entry or member list is: the provider's or one tenant's.
#[derive(Debug, Clone, PartialEq, Eq, Hash, Serialize, Deserialize)]
#[serde(rename_all = "snake_case")]
pub enum Owner {
    Platform,
    Tenant(String),
}

impl Owner {
    /// The owner's part of a table key: `PLATFORM` or the tenant's number id (digits only,
    /// so the two never collide).
    pub fn key(&self) -> &str {
        match self {
            Owner::Platform => "PLATFORM",
            Owner::Tenant(tenant) => tenant,
        }
    }

    pub fn from_key(key: &str) -> Self {
        if key == "PLATFORM" {
            Owner::Platform
        } else {
            Owner::Tenant(key.to_owned())
        }
    }

    pub fn tenant(&self) -> Option<&str> {
        match self {
            Owner::Platform => None,
            Owner::Tenant(tenant) => Some(tenant),
        }
    }
}

/// An authenticated caller.
#[derive(Debug, Clone, PartialEq, Eq)]
pub enum Principal {
    Key {
        id: String,
        owner: Owner,
        scopes: Vec<Scope>,
    },
    Person {
        /// Cognito's `sub`.
        sub: String,
        platform_admin: bool,
        memberships: BTreeMap<String, Role>,
    },
}

/// The answer to "may this caller do that here".
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub enum Access {
    Allowed,
    /// Not this caller's tenant: answered as if it did not exist.
    Hidden,
    /// The caller sees the tenant (or the route is not a tenant's) but lacks the scope or role.
    Forbidden,
}

impl Principal {
    /// A stable id for audit entries, rate limits and idempotency keys: `key:<id>` or
    /// `person:<sub>`.
    pub fn id(&self) -> String {
        match self {
            Principal::Key { id, .. } => format!("key:{id}"),
            Principal::Person { sub, .. } => format!("person:{sub}"),
        }
    }

    pub fn is_person(&self) -> bool {
        matches!(self, Principal::Person { .. })
    }

    /// May the caller do `need` in `tenant` (`None`: a route that is not a tenant's)?
    pub fn access(&self, tenant: Option<&str>, need: Need) -> Access {
        match self {
            Principal::Key { owner, scopes, .. } => {
                let allows = |scope: Scope| {
                    scopes.contains(&scope)
                        || (scope != Scope::CampaignsWrite && scopes.contains(&Scope::Admin))
                };
                let permitted = match need {
                    Need::Read => allows(Scope::Read) || allows(Scope::Send),
                    Need::Send => allows(Scope::Send),
                    Need::Admin => allows(Scope::Admin),
                    Need::CampaignsWrite => allows(Scope::CampaignsWrite),
                    Need::HooksManage => allows(Scope::HooksManage),
                    Need::Approve => false,
                    Need::Platform => *owner == Owner::Platform && allows(Scope::Admin),
                };
                match (owner, tenant) {
                    (Owner::Tenant(own), Some(tenant)) if own != tenant => Access::Hidden,
                    _ if permitted => Access::Allowed,
                    _ => Access::Forbidden,
                }
            }
            Principal::Person {
                platform_admin,
                memberships,
                ..
            } => {
                if *platform_admin {
                    return Access::Allowed;
                }
                let Some(tenant) = tenant else {
                    return Access::Forbidden;
                };
                let Some(role) = memberships.get(tenant) else {
                    return Access::Hidden;
                };
                let permitted = match need {
                    Need::Read | Need::Send => true,
                    Need::CampaignsWrite | Need::Approve => *role >= Role::Supervisor,
                    Need::Admin | Need::HooksManage => *role == Role::Admin,
                    Need::Platform => false,
                };
                if permitted {
                    Access::Allowed
                } else {
                    Access::Forbidden
                }
            }
        }
    }
}

impl fmt::Display for Principal {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        f.write_str(&self.id())
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    fn key(owner: Owner, scopes: &[Scope]) -> Principal {
        Principal::Key {
            id: "k".into(),
            owner,
            scopes: scopes.to_vec(),
        }
    }

    fn person(platform_admin: bool, memberships: &[(&str, Role)]) -> Principal {
        Principal::Person {
            sub: "s".into(),
            platform_admin,
            memberships: memberships
                .iter()
                .map(|(t, r)| (t.to_string(), *r))
                .collect(),
        }
    }

    #[test]
    fn a_tenant_key_never_sees_another_tenant_whatever_its_scopes() {
        let admin = key(Owner::Tenant("111".into()), &Scope::ALL);
        for need in [
            Need::Read,
            Need::Send,
            Need::Admin,
            Need::CampaignsWrite,
            Need::HooksManage,
        ] {
            assert_eq!(admin.access(Some("111"), need), Access::Allowed);
            assert_eq!(admin.access(Some("222"), need), Access::Hidden);
        }
        assert_eq!(admin.access(None, Need::Platform), Access::Forbidden);
        assert_eq!(admin.access(Some("111"), Need::Platform), Access::Forbidden);
    }

    #[test]
    fn scopes_gate_each_need_and_no_key_approves() {
        let reader = key(Owner::Tenant("111".into()), &[Scope::Read]);
        assert_eq!(reader.access(Some("111"), Need::Read), Access::Allowed);
        assert_eq!(reader.access(Some("111"), Need::Send), Access::Forbidden);
        assert_eq!(reader.access(Some("111"), Need::Admin), Access::Forbidden);
        let sender = key(Owner::Tenant("111".into()), &[Scope::Send]);
        assert_eq!(sender.access(Some("111"), Need::Send), Access::Allowed);
        assert_eq!(
            sender.access(Some("111"), Need::CampaignsWrite),
            Access::Forbidden
        );
        let admin = key(Owner::Tenant("111".into()), &[Scope::Admin]);
        assert_eq!(
            admin.access(Some("111"), Need::CampaignsWrite),
            Access::Forbidden
        );
        let hooks = key(Owner::Tenant("111".into()), &[Scope::HooksManage]);
        assert_eq!(
            hooks.access(Some("111"), Need::HooksManage),
            Access::Allowed
        );
        assert_eq!(hooks.access(Some("111"), Need::Read), Access::Forbidden);
        assert_eq!(hooks.access(Some("111"), Need::Admin), Access::Forbidden);
        assert_eq!(hooks.access(Some("222"), Need::HooksManage), Access::Hidden);
        assert_eq!(
            admin.access(Some("111"), Need::HooksManage),
            Access::Allowed,
            "subscriptions are the tenant's configuration"
        );
        assert_eq!(
            reader.access(Some("111"), Need::HooksManage),
            Access::Forbidden
        );
        let platform = key(Owner::Platform, &Scope::ALL);
        assert_eq!(
            platform.access(Some("222"), Need::HooksManage),
            Access::Allowed
        );
        assert_eq!(
            platform.access(Some("111"), Need::Approve),
            Access::Forbidden
        );
        assert_eq!(platform.access(None, Need::Platform), Access::Allowed);
        let platform_reader = key(Owner::Platform, &[Scope::Read]);
        assert_eq!(
            platform_reader.access(Some("222"), Need::Read),
            Access::Allowed
        );
        assert_eq!(
            platform_reader.access(None, Need::Platform),
            Access::Forbidden
        );
    }

    #[test]
    fn people_act_by_role_in_their_tenants_only() {
        let agent = person(false, &[("111", Role::Agent), ("333", Role::Admin)]);
        assert_eq!(agent.access(Some("111"), Need::Send), Access::Allowed);
        assert_eq!(agent.access(Some("111"), Need::Admin), Access::Forbidden);
        assert_eq!(
            agent.access(Some("111"), Need::HooksManage),
            Access::Forbidden
        );
        assert_eq!(
            agent.access(Some("333"), Need::HooksManage),
            Access::Allowed
        );
        assert_eq!(agent.access(Some("111"), Need::Approve), Access::Forbidden);
        assert_eq!(agent.access(Some("333"), Need::Admin), Access::Allowed);
        assert_eq!(agent.access(Some("222"), Need::Read), Access::Hidden);
        assert_eq!(agent.access(None, Need::Platform), Access::Forbidden);
        let supervisor = person(false, &[("111", Role::Supervisor)]);
        assert_eq!(
            supervisor.access(Some("111"), Need::Approve),
            Access::Allowed
        );
        assert_eq!(
            supervisor.access(Some("111"), Need::Admin),
            Access::Forbidden
        );
        assert_eq!(
            supervisor.access(Some("111"), Need::HooksManage),
            Access::Forbidden
        );
        let admin = person(true, &[]);
        assert_eq!(admin.access(Some("222"), Need::Admin), Access::Allowed);
        assert_eq!(admin.access(None, Need::Platform), Access::Allowed);
    }
}
