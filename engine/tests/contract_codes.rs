//! The error table of docs/contract.md §7 and the engine's `ErrorKind`
//! cannot drift apart: every kind's code and HTTP status are a row there,
//! and every row is a kind.

use parlor_engine::ErrorKind;

/// The `| code | HTTP | … |` rows of the contract's §7.
fn contract_rows() -> Vec<(String, u16)> {
    let path = concat!(env!("CARGO_MANIFEST_DIR"), "/../docs/contract.md");
    let text = std::fs::read_to_string(path).expect("docs/contract.md");
    let section = text
        .split("\n## 7 ")
        .nth(1)
        .and_then(|rest| rest.split("\n## ").next())
        .expect("a §7 in docs/contract.md");
    section
        .lines()
        .filter_map(|line| {
            let cells: Vec<&str> = line.split('|').map(str::trim).collect();
            let code = cells.get(1)?.strip_prefix('`')?.strip_suffix('`')?;
            let status = cells.get(2)?.parse().ok()?;
            Some((code.to_owned(), status))
        })
        .collect()
}

#[test]
fn every_kind_is_a_row_of_the_contract_with_its_status() {
    let rows = contract_rows();
    let kinds: Vec<(String, u16)> = ErrorKind::ALL
        .iter()
        .map(|k| (k.code().to_owned(), k.http_status()))
        .collect();
    assert_eq!(rows, kinds, "docs/contract.md §7 against ErrorKind");
}
