//! No import circles inside the crates that carry the contract's paths
//! (`engine/src`, `storage/seaorm/src`): a newcomer following a call must
//! never come back to the file they started from.
//!
//! An edge a → b exists when module a names module b in any way: `use
//! crate::…`, `use super::…`, `use self::…`, an inline `crate::…` or
//! `super::…` path (in code, comments or doc links alike), or a path to an
//! item that `lib.rs` / a `mod.rs` re-exports from b (resolved through the
//! re-export to b). A `mod.rs`/`lib.rs` that re-exports from its child names
//! that child. Inline `mod tests { use super::*; }` blocks name their own
//! file, which is no edge.
//!
//! This is a reading of the source text, not of rustc's resolution: it is
//! deliberately stricter (a mention in a comment counts).

use std::{
    collections::{BTreeMap, BTreeSet},
    fs,
    path::{Path, PathBuf},
};

fn repo_root() -> PathBuf {
    Path::new(env!("CARGO_MANIFEST_DIR"))
        .parent()
        .expect("tests/ sits in the workspace root")
        .to_path_buf()
}

/// One crate's modules: path ("crate", "ports", "ports::bus") → source text.
struct Crate {
    modules: BTreeMap<String, String>,
    /// Module → (name it re-exports → module that defines it, when known).
    reexports: BTreeMap<String, BTreeMap<String, String>>,
}

fn module_path(src: &Path, file: &Path) -> String {
    let rel = file.strip_prefix(src).expect("under src");
    let mut parts: Vec<String> = rel
        .iter()
        .map(|p| p.to_string_lossy().trim_end_matches(".rs").to_string())
        .collect();
    if matches!(parts.last().map(String::as_str), Some("mod" | "lib")) {
        parts.pop();
    }
    if parts.is_empty() {
        "crate".to_string()
    } else {
        parts.join("::")
    }
}

fn rust_files(dir: &Path, out: &mut Vec<PathBuf>) {
    for entry in fs::read_dir(dir).expect("readable dir") {
        let path = entry.expect("dir entry").path();
        if path.is_dir() {
            rust_files(&path, out);
        } else if path.extension().is_some_and(|e| e == "rs") {
            out.push(path);
        }
    }
}

fn join(base: &str, child: &str) -> String {
    if base == "crate" {
        child.to_string()
    } else {
        format!("{base}::{child}")
    }
}

fn parent(module: &str) -> String {
    match module.rsplit_once("::") {
        Some((p, _)) => p.to_string(),
        None => "crate".to_string(),
    }
}

fn is_ident_char(c: char) -> bool {
    c.is_ascii_alphanumeric() || c == '_'
}

/// The paths written after one `prefix::` at `at` in `text`, with brace
/// groups expanded: `crate::{a::B, c::{D, E}}` gives `a::B`, `c::D`, `c::E`.
fn paths_at(text: &str, at: usize) -> Vec<Vec<String>> {
    fn parse(chars: &[char], i: &mut usize, prefix: Vec<String>, out: &mut Vec<Vec<String>>) {
        let mut path = prefix;
        loop {
            while *i < chars.len() && chars[*i].is_whitespace() {
                *i += 1;
            }
            if *i < chars.len() && chars[*i] == '{' {
                *i += 1;
                loop {
                    parse(chars, i, path.clone(), out);
                    while *i < chars.len() && chars[*i].is_whitespace() {
                        *i += 1;
                    }
                    match chars.get(*i) {
                        Some(',') => {
                            *i += 1;
                            while *i < chars.len() && chars[*i].is_whitespace() {
                                *i += 1;
                            }
                            if chars.get(*i) == Some(&'}') {
                                *i += 1;
                                return;
                            }
                        }
                        Some('}') => {
                            *i += 1;
                            return;
                        }
                        _ => return,
                    }
                }
            }
            let start = *i;
            while *i < chars.len() && is_ident_char(chars[*i]) {
                *i += 1;
            }
            if start == *i {
                if !path.is_empty() {
                    out.push(path);
                }
                return;
            }
            path.push(chars[start..*i].iter().collect());
            if chars.get(*i) == Some(&':') && chars.get(*i + 1) == Some(&':') {
                *i += 2;
                continue;
            }
            out.push(path);
            return;
        }
    }
    let chars: Vec<char> = text[at..].chars().take(4000).collect();
    let mut out = Vec::new();
    let mut i = 0;
    parse(&chars, &mut i, Vec::new(), &mut out);
    out
}

/// Every `(prefix, path)` a text names, with the byte offset of each.
fn named_paths(text: &str) -> Vec<(usize, &'static str, Vec<String>)> {
    let mut found = Vec::new();
    for prefix in ["crate", "super", "self"] {
        let needle = format!("{prefix}::");
        let mut from = 0;
        while let Some(pos) = text[from..].find(&needle) {
            let at = from + pos;
            from = at + needle.len();
            let before = text[..at].chars().next_back();
            if before.is_some_and(|c| is_ident_char(c) || c == ':') {
                continue; // `$crate::`, `foo::super::` or an identifier's tail
            }
            for path in paths_at(text, at + needle.len()) {
                found.push((at, prefix, path));
            }
        }
    }
    found
}

impl Crate {
    fn read(src: &Path) -> Crate {
        let mut files = Vec::new();
        rust_files(src, &mut files);
        let modules: BTreeMap<String, String> = files
            .iter()
            .map(|f| (module_path(src, f), fs::read_to_string(f).expect("utf-8")))
            .collect();
        let mut krate = Crate {
            modules,
            reexports: BTreeMap::new(),
        };
        krate.read_reexports();
        krate
    }

    /// `pub use child::{A, B}` in lib.rs / mod.rs: A and B come from child.
    fn read_reexports(&mut self) {
        let mut reexports = BTreeMap::new();
        for (module, text) in &self.modules {
            let mut names = BTreeMap::new();
            for (at, _) in text.match_indices("pub use ") {
                for path in paths_at(text, at + "pub use ".len()) {
                    let Some(name) = path.last() else { continue };
                    let (base, path) = match path.first().map(String::as_str) {
                        Some("crate") => ("crate".to_string(), &path[1..]),
                        Some("super") => (parent(module), &path[1..]),
                        Some("self") => (module.clone(), &path[1..]),
                        _ => (module.clone(), &path[..]),
                    };
                    let (target, _) = self.walk(&base, path);
                    if target != *module {
                        names.insert(name.clone(), target);
                    }
                }
            }
            reexports.insert(module.clone(), names);
        }
        self.reexports = reexports;
    }

    /// The module a path relative to `base` stops in (its longest module
    /// prefix), and the rest of the path.
    fn walk<'p>(&self, base: &str, path: &'p [String]) -> (String, &'p [String]) {
        let mut module = base.to_string();
        let mut rest = path;
        while let Some((first, tail)) = rest.split_first() {
            let next = join(&module, first);
            if !self.modules.contains_key(&next) {
                break;
            }
            module = next;
            rest = tail;
        }
        (module, rest)
    }

    /// The defining module of `path` named from `base`, following one level
    /// of re-exports at the module the path stops in.
    fn resolve(&self, base: &str, path: &[String]) -> String {
        let (mut module, rest) = self.walk(base, path);
        let Some(item) = rest.first() else {
            return module;
        };
        // `lib.rs` may re-export what `ports/mod.rs` re-exports: follow on.
        for _ in 0..8 {
            match self.reexports.get(&module).and_then(|r| r.get(item)) {
                Some(next) if *next != module => module = next.clone(),
                _ => break,
            }
        }
        module
    }

    fn edges(&self) -> BTreeMap<String, BTreeSet<String>> {
        let mut edges: BTreeMap<String, BTreeSet<String>> = BTreeMap::new();
        for (module, text) in &self.modules {
            // Inline `mod name {` blocks (tests): `super::` there is the file.
            let inline_from = inline_module_start(text);
            let mut targets = BTreeSet::new();
            for (at, prefix, path) in named_paths(text) {
                let inline = at > inline_from;
                let base = match (prefix, inline) {
                    ("crate", _) => "crate".to_string(),
                    ("super", true) | ("self", false) => module.clone(),
                    ("super", false) => parent(module),
                    ("self", true) => continue, // the inline module itself
                    _ => unreachable!(),
                };
                let target = self.resolve(&base, &path);
                if target != *module {
                    targets.insert(target);
                }
            }
            // A re-export names the module it re-exports from.
            targets.extend(self.reexports[module].values().cloned());
            targets.remove(module);
            edges.insert(module.clone(), targets);
        }
        edges
    }
}

/// Where the first inline `mod name {` block of a file starts.
fn inline_module_start(text: &str) -> usize {
    let mut offset = 0;
    for line in text.split_inclusive('\n') {
        let code = line.trim();
        let declares = ["mod ", "pub mod ", "pub(crate) mod "]
            .iter()
            .any(|p| code.starts_with(p));
        if declares && code.ends_with('{') {
            return offset;
        }
        offset += line.len();
    }
    usize::MAX
}

/// Strongly connected components with more than one module (Tarjan).
fn circles(edges: &BTreeMap<String, BTreeSet<String>>) -> Vec<Vec<String>> {
    struct State<'a> {
        edges: &'a BTreeMap<String, BTreeSet<String>>,
        index: BTreeMap<&'a str, usize>,
        low: BTreeMap<&'a str, usize>,
        stack: Vec<&'a str>,
        on_stack: BTreeSet<&'a str>,
        next: usize,
        out: Vec<Vec<String>>,
    }
    fn visit<'a>(s: &mut State<'a>, v: &'a str) {
        s.index.insert(v, s.next);
        s.low.insert(v, s.next);
        s.next += 1;
        s.stack.push(v);
        s.on_stack.insert(v);
        for w in s.edges.get(v).into_iter().flatten() {
            let w = w.as_str();
            if !s.edges.contains_key(w) {
                continue;
            }
            if !s.index.contains_key(w) {
                visit(s, w);
                let low = s.low[v].min(s.low[w]);
                s.low.insert(v, low);
            } else if s.on_stack.contains(w) {
                let low = s.low[v].min(s.index[w]);
                s.low.insert(v, low);
            }
        }
        if s.low[v] == s.index[v] {
            let mut component = Vec::new();
            while let Some(w) = s.stack.pop() {
                s.on_stack.remove(w);
                component.push(w.to_string());
                if w == v {
                    break;
                }
            }
            if component.len() > 1 {
                component.sort();
                s.out.push(component);
            }
        }
    }
    let mut s = State {
        edges,
        index: BTreeMap::new(),
        low: BTreeMap::new(),
        stack: Vec::new(),
        on_stack: BTreeSet::new(),
        next: 0,
        out: Vec::new(),
    };
    for v in edges.keys() {
        if !s.index.contains_key(v.as_str()) {
            visit(&mut s, v);
        }
    }
    s.out
}

fn assert_no_circles(src: &str) {
    let krate = Crate::read(&repo_root().join(src));
    let edges = krate.edges();
    let found = circles(&edges);
    let mut report = String::new();
    for component in &found {
        report.push_str(&format!("\n  circle: {}", component.join(", ")));
        for a in component {
            for b in &edges[a] {
                if component.contains(b) {
                    report.push_str(&format!("\n    {a} -> {b}"));
                }
            }
        }
    }
    assert!(found.is_empty(), "import circles in {src}:{report}");
}

#[test]
fn the_engine_has_no_import_circles() {
    assert_no_circles("engine/src");
}

#[test]
fn the_seaorm_store_has_no_import_circles() {
    assert_no_circles("storage/seaorm/src");
}

#[test]
fn the_checker_sees_every_way_of_naming() {
    let text =
        "use crate::{a::X, b::{c::Y, Z}};\nfn f() { super::d::g(); }\n/// [x](crate::e::H)\n";
    let mut named: Vec<String> = named_paths(text)
        .into_iter()
        .map(|(_, prefix, p)| format!("{prefix}::{}", p.join("::")))
        .collect();
    named.sort();
    assert_eq!(
        named,
        [
            "crate::a::X",
            "crate::b::Z",
            "crate::b::c::Y",
            "crate::e::H",
            "super::d::g"
        ]
    );
    let mut edges = BTreeMap::new();
    edges.insert("a".to_string(), BTreeSet::from(["b".to_string()]));
    edges.insert("b".to_string(), BTreeSet::from(["c".to_string()]));
    edges.insert("c".to_string(), BTreeSet::from(["a".to_string()]));
    edges.insert("d".to_string(), BTreeSet::from(["a".to_string()]));
    assert_eq!(circles(&edges), vec![vec!["a", "b", "c"]]);
}
