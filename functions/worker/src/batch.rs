//! The SQS FIFO batch processor (Powertools' partial-batch model): records of one message
//! group run in order, groups concurrently; when a record fails, or too little time is left
//! to start it, it and every later record of its group are reported failed, so SQS
//! redelivers them in order.

use std::fmt::Display;
use std::future::Future;

use aws_lambda_events::sqs::{BatchItemFailure, SqsBatchResponse, SqsEvent, SqsMessage};

/// Runs `handle` on every record while `can_start` says there is time for one more;
/// returns the failures to report.
pub async fn process_fifo_batch<'e, C, F, Fut, E>(
    event: &'e SqsEvent,
    can_start: C,
    handle: F,
) -> SqsBatchResponse
where
    C: Fn() -> bool,
    F: Fn(&'e SqsMessage) -> Fut,
    Fut: Future<Output = Result<(), E>>,
    E: Display,
{
    let mut groups: Vec<(&str, Vec<&SqsMessage>)> = Vec::new();
    for record in &event.records {
        let group = record
            .attributes
            .get("MessageGroupId")
            .map_or("", String::as_str);
        match groups.iter_mut().find(|(g, _)| *g == group) {
            Some((_, records)) => records.push(record),
            None => groups.push((group, vec![record])),
        }
    }
    let (handle, can_start) = (&handle, &can_start);
    let failed = futures::future::join_all(groups.into_iter().map(|(_, records)| async move {
        for (index, record) in records.iter().enumerate() {
            if !can_start() {
                tracing::warn!(
                    unprocessed = records.len() - index,
                    "too little time left to start a record; it and the rest of its conversation will be redelivered"
                );
                return records[index..]
                    .iter()
                    .map(|r| r.message_id.clone().unwrap_or_default())
                    .collect();
            }
            if let Err(error) = handle(record).await {
                tracing::warn!(%error, "record failed; it and the rest of its conversation will be redelivered");
                return records[index..]
                    .iter()
                    .map(|r| r.message_id.clone().unwrap_or_default())
                    .collect();
            }
        }
        Vec::new()
    }))
    .await;
    let mut response = SqsBatchResponse::default();
    response.batch_item_failures = failed
        .into_iter()
        .flatten()
        .map(|id| {
            let mut failure = BatchItemFailure::default();
            failure.item_identifier = id;
            failure
        })
        .collect();
    response
}

#[cfg(test)]
mod tests {
    use std::collections::HashMap;
    use std::sync::Mutex;

    use super::*;

    fn record(id: &str, group: &str) -> SqsMessage {
        let mut record = SqsMessage::default();
        record.message_id = Some(id.into());
        record.body = Some(id.into());
        record.attributes = HashMap::from([("MessageGroupId".to_owned(), group.to_owned())]);
        record
    }

    fn batch(records: &[(&str, &str)]) -> SqsEvent {
        let mut event = SqsEvent::default();
        event.records = records.iter().map(|(id, g)| record(id, g)).collect();
        event
    }

    fn failed(response: &SqsBatchResponse) -> Vec<String> {
        response
            .batch_item_failures
            .iter()
            .map(|f| f.item_identifier.clone())
            .collect()
    }

    #[tokio::test]
    async fn each_group_runs_in_arrival_order() {
        let event = batch(&[
            ("a1", "a"),
            ("b1", "b"),
            ("a2", "a"),
            ("b2", "b"),
            ("a3", "a"),
        ]);
        let seen = Mutex::new(Vec::new());
        let response = process_fifo_batch(
            &event,
            || true,
            |r| {
                seen.lock().unwrap().push(r.message_id.clone().unwrap());
                async { Ok::<(), String>(()) }
            },
        )
        .await;
        assert!(failed(&response).is_empty());
        let seen = seen.into_inner().unwrap();
        let of = |g: char| -> Vec<&String> { seen.iter().filter(|id| id.starts_with(g)).collect() };
        assert_eq!(of('a'), ["a1", "a2", "a3"]);
        assert_eq!(of('b'), ["b1", "b2"]);
    }

    #[tokio::test]
    async fn a_failure_fails_the_rest_of_its_group_only() {
        let event = batch(&[
            ("a1", "a"),
            ("a2", "a"),
            ("b1", "b"),
            ("a3", "a"),
            ("b2", "b"),
        ]);
        let seen = Mutex::new(Vec::new());
        let response = process_fifo_batch(
            &event,
            || true,
            |r| {
                let id = r.message_id.clone().unwrap();
                seen.lock().unwrap().push(id.clone());
                async move {
                    if id == "a2" {
                        Err("store unavailable".to_owned())
                    } else {
                        Ok(())
                    }
                }
            },
        )
        .await;
        assert_eq!(failed(&response), ["a2", "a3"]);
        let seen = seen.into_inner().unwrap();
        assert!(
            !seen.contains(&"a3".to_owned()),
            "nothing after a failure runs"
        );
        assert!(seen.contains(&"b2".to_owned()), "other groups go on");
    }

    #[tokio::test]
    async fn records_not_started_for_lack_of_time_fail_with_the_rest_of_their_group() {
        let event = batch(&[
            ("a1", "a"),
            ("b1", "b"),
            ("a2", "a"),
            ("b2", "b"),
            ("a3", "a"),
        ]);
        let seen = Mutex::new(Vec::new());
        let starts = Mutex::new(0);
        // Time for three records: the first of each group and one more.
        let can_start = || {
            let mut starts = starts.lock().unwrap();
            *starts += 1;
            *starts <= 3
        };
        let response = process_fifo_batch(&event, can_start, |r| {
            seen.lock().unwrap().push(r.message_id.clone().unwrap());
            async { Ok::<(), String>(()) }
        })
        .await;
        let seen = seen.into_inner().unwrap();
        assert_eq!(seen.len(), 3);
        let mut failed = failed(&response);
        failed.sort();
        let mut expected: Vec<String> = ["a1", "a2", "a3", "b1", "b2"]
            .iter()
            .map(|id| id.to_string())
            .filter(|id| !seen.contains(id))
            .collect();
        expected.sort();
        assert_eq!(
            failed, expected,
            "every record not run is reported, none lost"
        );
        for group in ['a', 'b'] {
            let run: Vec<&String> = seen.iter().filter(|id| id.starts_with(group)).collect();
            let first_not_run = ["1", "2", "3"]
                .iter()
                .position(|n| !run.contains(&&format!("{group}{n}")));
            if let Some(k) = first_not_run {
                assert_eq!(
                    run.len(),
                    k,
                    "a group stops at its first record not started"
                );
            }
        }
    }
}
