//! The platform around the conversations: what the API (`functions/api`) and the ops CLI
//! share, one code path for both. Everything here works on the stack's table (and queue)
//! through the AWS SDK; its tests run against the local stack, not a twin.

use aws_sdk_dynamodb::Client;

/// The stack's table, as the platform code reads and writes it.
#[derive(Clone, Debug)]
pub struct Db {
    pub client: Client,
    pub table: String,
}

impl Db {
    pub fn new(client: Client, table: impl Into<String>) -> Self {
        Self {
            client,
            table: table.into(),
        }
    }
}
