//! The CPU-bound part of a webhook POST (verify + parse + build the SQS entries) beside the
//! floor it cannot beat: HMAC-SHA256 of the body plus a `serde_json` parse of the same bytes.

use std::hint::black_box;

use criterion::{Criterion, Throughput, criterion_group, criterion_main};
use hmac::{Hmac, KeyInit, Mac};
use sha2::Sha256;
use shared::whatsapp::signature::sign;

const SECRET: &[u8] = b"bench-app-secret";

/// A Meta webhook body with `count` text messages from different customers.
fn body(count: usize) -> Vec<u8> {
    let messages: Vec<_> = (0..count)
        .map(|i| {
            serde_json::json!({
                "from": format!("55119{i:08}"),
                "id": format!("wamid.HBgNNTUxMTk4NzY1NDMyMRUCABIYFDNBMDQ3RkE2OUY1{i:08}A="),
                "timestamp": "1795089600",
                "type": "text",
                "text": {"body": "Olá, gostaria de saber o status do meu pedido 12345, por favor"}
            })
        })
        .collect();
    let contacts: Vec<_> = (0..count)
        .map(|i| serde_json::json!({"profile": {"name": format!("Cliente {i}")}, "wa_id": format!("55119{i:08}")}))
        .collect();
    serde_json::to_vec(&serde_json::json!({
        "object": "whatsapp_business_account",
        "entry": [{"id": "102290129340398", "changes": [{"field": "messages", "value": {
            "messaging_product": "whatsapp",
            "metadata": {"display_phone_number": "551130000000", "phone_number_id": "106540352242922"},
            "contacts": contacts,
            "messages": messages
        }}]}]
    }))
    .unwrap()
}

fn floor(body: &[u8], header: &[u8]) -> serde_json::Value {
    let mut mac = Hmac::<Sha256>::new_from_slice(SECRET).unwrap();
    mac.update(body);
    let expected = hex::decode(&header[7..]).unwrap();
    mac.verify_slice(&expected).unwrap();
    serde_json::from_slice(body).unwrap()
}

fn ingress(c: &mut Criterion) {
    for count in [1, 100] {
        let body = body(count);
        let header = sign(SECRET, &body);
        let mut group = c.benchmark_group(format!("post_{count}_messages"));
        group.throughput(Throughput::Bytes(body.len() as u64));
        group.bench_function("floor_hmac_and_parse", |b| {
            b.iter(|| floor(black_box(&body), black_box(header.as_bytes())))
        });
        group.bench_function("verify_parse_build_entries", |b| {
            b.iter(|| {
                let accepted =
                    webhook::accept(SECRET, black_box(&body), Some(black_box(header.as_bytes())))
                        .unwrap()
                        .unwrap();
                assert_eq!(accepted.entries.len(), count);
                accepted
            })
        });
        group.finish();
    }
}

criterion_group!(benches, ingress);
criterion_main!(benches);
