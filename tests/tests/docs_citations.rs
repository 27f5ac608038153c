//! Citations that cannot drift: code and docs cite the contract as
//! `docs/contract.md §2` (a section number), and a newcomer must be able to
//! follow each one from a clone. This walks the repository's files (not
//! `target`, `node_modules`, `.git`) and fails when
//! - a file cites the contract text that used to live outside the
//!   repository (its old name in capitals, with `.md` or with a section sign),
//!   or cites a section of an issue, which a clone does not hold;
//! - a cited section of docs/contract.md does not exist there;
//! - docs/contract.md's numbered sections were renumbered or renamed (the
//!   citations in the code mean these titles).

use std::{
    collections::BTreeSet,
    fs,
    path::{Path, PathBuf},
};

/// The sections of docs/contract.md, as the code cites them.
const SECTIONS: [(u32, &str); 10] = [
    (1, "Identity"),
    (2, "Rooms and seats"),
    (3, "The room log"),
    (4, "HTTP"),
    (5, "Raw WebSocket"),
    (6, "GraphQL"),
    (7, "Error codes"),
    (8, "Liveness and tokens on live connections"),
    (9, "Origins"),
    (10, "Webhooks"),
];

/// Directories that hold no sources of the project.
const SKIPPED_DIRS: [&str; 3] = ["target", "node_modules", ".git"];

fn repo_root() -> PathBuf {
    Path::new(env!("CARGO_MANIFEST_DIR"))
        .parent()
        .expect("tests/ sits in the workspace root")
        .to_path_buf()
}

/// Every text file under `dir`, with its contents; binary files are skipped.
fn text_files(dir: &Path, out: &mut Vec<(PathBuf, String)>) {
    let entries = fs::read_dir(dir).unwrap_or_else(|e| panic!("reading {}: {e}", dir.display()));
    for entry in entries {
        let entry = entry.expect("a directory entry");
        let path = entry.path();
        let kind = entry.file_type().expect("a file type");
        if kind.is_dir() {
            let name = entry.file_name();
            if !SKIPPED_DIRS.iter().any(|skip| name == *skip) {
                text_files(&path, out);
            }
        } else if kind.is_file()
            && let Ok(bytes) = fs::read(&path)
            && let Ok(text) = String::from_utf8(bytes)
        {
            out.push((path, text));
        }
    }
}

/// The `## N Title` headings of docs/contract.md.
fn contract_sections(contract: &str) -> Vec<(u32, String)> {
    contract
        .lines()
        .filter_map(|line| line.strip_prefix("## "))
        .filter_map(|heading| {
            let (number, title) = heading.split_once(' ')?;
            Some((number.parse().ok()?, title.trim().to_string()))
        })
        .collect()
}

/// The section numbers cited right after `rest`'s start: `§2`, `§2–§3`,
/// `§1, §2, §4`, `§2 and §3`. `Err` for a section sign with no number.
fn cited_sections(mut rest: &str) -> Result<Vec<u32>, String> {
    let mut cited = Vec::new();
    loop {
        rest = rest.trim_start_matches([' ', '`']);
        let Some(after) = rest.strip_prefix('§') else {
            return Ok(cited);
        };
        let digits = after.len() - after.trim_start_matches(|c: char| c.is_ascii_digit()).len();
        if digits == 0 {
            return Err(format!(
                "a section sign without a number: `{}`",
                excerpt(rest)
            ));
        }
        cited.push(after[..digits].parse().expect("ascii digits"));
        rest = &after[digits..];
        // A list or a range goes on only when another section sign follows.
        for separator in ["–", "-", ",", " and", " or"] {
            if let Some(next) = rest.strip_prefix(separator)
                && next.trim_start().starts_with('§')
            {
                rest = next;
                break;
            }
        }
    }
}

fn excerpt(text: &str) -> String {
    text.chars().take(40).collect()
}

/// Whether `text` cites a section of an issue: the word, a number, a section sign.
fn cites_issue_section(text: &str) -> Option<String> {
    text.match_indices("issue ").find_map(|(at, _)| {
        let rest = &text[at + "issue ".len()..];
        let number = rest.trim_start_matches(|c: char| c.is_ascii_digit());
        (number.len() < rest.len() && number.starts_with(" §")).then(|| excerpt(&text[at..]))
    })
}

#[test]
fn every_contract_citation_names_a_section_in_the_repository() {
    let root = repo_root();
    let contract = fs::read_to_string(root.join("docs/contract.md"))
        .expect("docs/contract.md, the normative contract, is in the repository");

    let sections = contract_sections(&contract);
    let expected: Vec<(u32, String)> = SECTIONS
        .iter()
        .map(|(n, title)| (*n, (*title).to_string()))
        .collect();
    assert_eq!(
        sections, expected,
        "docs/contract.md's sections changed; code cites them by number, so \
         keep the numbers and titles stable (append new sections at the end)"
    );
    let numbers: BTreeSet<u32> = sections.iter().map(|(n, _)| *n).collect();

    // Spelled in two halves so that this file does not cite what it forbids.
    let outside = [concat!("CONTRACT", ".md"), concat!("CONTRACT", " §")];

    let mut files = Vec::new();
    text_files(&root, &mut files);
    assert!(
        files
            .iter()
            .any(|(path, _)| path.ends_with("engine/src/lib.rs")),
        "the walk found the sources"
    );

    let mut problems = Vec::new();
    let mut citations = 0;
    for (path, text) in &files {
        let shown = path.strip_prefix(&root).unwrap_or(path).display();
        for (n, line) in text.lines().enumerate() {
            let at = format!("{shown}:{}", n + 1);
            for needle in outside {
                if line.contains(needle) {
                    problems.push(format!(
                        "{at}: cites `{needle}`, not in the repository; cite docs/contract.md and its section"
                    ));
                }
            }
            if let Some(cited) = cites_issue_section(line) {
                problems.push(format!(
                    "{at}: cites `{cited}`, a section of an issue; cite docs/contract.md and its section"
                ));
            }
            for (i, _) in line.match_indices("contract.md") {
                match cited_sections(&line[i + "contract.md".len()..]) {
                    Ok(cited) => {
                        for section in cited {
                            citations += 1;
                            if !numbers.contains(&section) {
                                problems.push(format!(
                                    "{at}: cites section {section} of docs/contract.md, which does not exist"
                                ));
                            }
                        }
                    }
                    Err(e) => problems.push(format!("{at}: {e}")),
                }
            }
        }
    }

    // Within the contract, a bare section sign points into the contract.
    for (n, line) in contract.lines().enumerate() {
        for (i, _) in line.match_indices('§') {
            match cited_sections(&line[i..]) {
                Ok(cited) => {
                    for section in cited.into_iter().filter(|s| !numbers.contains(s)) {
                        problems.push(format!(
                            "docs/contract.md:{}: refers to section {section}, which does not exist",
                            n + 1
                        ));
                    }
                }
                Err(e) => problems.push(format!("docs/contract.md:{}: {e}", n + 1)),
            }
        }
    }

    assert!(
        citations > 0,
        "no citation of docs/contract.md found: the walk is broken"
    );
    assert!(
        problems.is_empty(),
        "{} citation problem(s):\n{}",
        problems.len(),
        problems.join("\n")
    );
}

#[test]
fn the_citation_reader_reads_lists_and_ranges() {
    assert_eq!(cited_sections(" §2."), Ok(vec![2]));
    assert_eq!(cited_sections(" §2–§3: the rules"), Ok(vec![2, 3]));
    assert_eq!(
        cited_sections(" §1, §2, §4, §7 over HTTP"),
        Ok(vec![1, 2, 4, 7])
    );
    assert_eq!(cited_sections("` §7, §9)"), Ok(vec![7, 9]));
    assert_eq!(cited_sections(" §3, History"), Ok(vec![3]));
    assert_eq!(cited_sections(" is normative"), Ok(vec![]));
    assert!(cited_sections(" §N").is_err());
    // Spelled in two halves, as above.
    assert!(cites_issue_section(concat!("(issue 18", " §6)")).is_some());
    assert!(cites_issue_section("(issue 18: socket.rs)").is_none());
}
