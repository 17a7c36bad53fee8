//! The store contract (`shared::store::contract`) on the DynamoDB adapter against the local
//! stack: the same checks the in-memory twin passes in unit tests.

use blackbox::stack::Stack;
use shared::store::dynamodb::DynamoStore;

#[tokio::test]
async fn the_dynamodb_store_keeps_the_store_contract() {
    let stack = Stack::connect().await;
    let table = stack.table().await;
    let store = DynamoStore::new(stack.dynamodb.clone(), table);
    shared::store::contract::run_all(&store, "106540352242922").await;
}
