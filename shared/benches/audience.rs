//! A campaign audience of 100,000 rows (~6 MB of CSV) parsed as the import reads it:
//! numbers normalised, duplicates found, parameters checked.

use std::hint::black_box;

use criterion::{Criterion, criterion_group, criterion_main};
use shared::campaign::audience::{CsvAudience, Parameter};

/// 100,000 rows in the forms people write, one in fifty a duplicate.
fn csv() -> Vec<u8> {
    let mut csv = String::from("phone,nome,cupom,cidade,loja\n");
    for row in 0..100_000u32 {
        let subscriber = 90_000_000 + if row % 50 == 0 { row / 2 } else { row };
        let phone = match row % 3 {
            0 => format!(
                "+55 (11) {}-{:04}",
                subscriber / 10_000,
                subscriber % 10_000
            ),
            1 => format!("0119{subscriber}"),
            _ => format!("55119{subscriber}"),
        };
        csv.push_str(&format!(
            "{phone},Cliente {row},CUPOM{row:06},São Paulo,Loja Centro Paulista\n"
        ));
    }
    csv.into_bytes()
}

fn audience(c: &mut Criterion) {
    let csv = csv();
    let parameters = [
        Parameter::Column("nome".into()),
        Parameter::Column("cupom".into()),
        Parameter::Text("Loja A".into()),
    ];
    c.bench_function("audience/100k rows", |b| {
        b.iter(|| {
            let accepted = CsvAudience::new(black_box(csv.as_slice()), &parameters)
                .unwrap()
                .filter(|row| matches!(row, Ok(Ok(_))))
                .count();
            assert!(accepted > 90_000);
            accepted
        })
    });
}

criterion_group! {
    name = benches;
    config = Criterion::default().sample_size(10);
    targets = audience
}
criterion_main!(benches);
