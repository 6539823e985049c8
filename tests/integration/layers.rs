//! The module layering of `docs/architecture.md`, checked against the source: every top-level
//! module imports only what its row in the table allows, modules marked neither (torch) nor
//! (part torch) never name `tch`, and neither the modules nor the files inside a module import each other in a circle.
//! Unit-test modules (`#[cfg(test)] mod tests` at a file's end) are not counted: a test may build
//! its fixtures with anything.

use std::collections::{BTreeMap, BTreeSet};
use std::path::{Path, PathBuf};

/// Modules every module may use: the crate root's shared vocabulary and utilities.
const SHARED: [&str; 8] =
    ["space", "dataset", "error", "fsutil", "progress", "mt19937", "pickle", "prerequisites"];

struct Row {
    may_import: BTreeSet<String>,
    torch: bool,
}

fn source_root() -> PathBuf {
    Path::new(env!("CARGO_MANIFEST_DIR")).join("src")
}

/// The table of `docs/architecture.md`: module → (may import, needs torch).
fn layering_table(markdown: &str) -> BTreeMap<String, Row> {
    let mut rows = BTreeMap::new();
    for line in markdown.lines().filter(|l| l.starts_with("| `")) {
        let cells: Vec<&str> = line.trim_matches('|').split('|').map(str::trim).collect();
        let [module_cell, _, may_cell] = cells[..] else { continue };
        let module = backticked(module_cell).into_iter().next().unwrap();
        let allowed_part = may_cell.split(';').next().unwrap();
        let may_import = if allowed_part.contains("the library") {
            ["*".to_string()].into()
        } else {
            backticked(allowed_part).into_iter().collect()
        };
        rows.insert(module, Row { may_import, torch: module_cell.contains("torch") });
    }
    rows
}

fn backticked(text: &str) -> Vec<String> {
    text.split('`').skip(1).step_by(2).map(str::to_string).collect()
}

fn rust_files(dir: &Path) -> Vec<PathBuf> {
    let mut files: Vec<PathBuf> = crate::common::files_under(dir)
        .into_iter()
        .filter(|p| p.extension().is_some_and(|e| e == "rs"))
        .collect();
    files.sort();
    files
}

/// A file's code without its trailing unit-test module and without comments.
fn code_of(text: &str) -> String {
    let end = text.find("#[cfg(test)]\nmod tests").unwrap_or(text.len());
    text[..end]
        .lines()
        .map(|l| match l.find("//") {
            Some(at) if !l[..at].contains('"') => &l[..at],
            _ => l,
        })
        .collect::<Vec<_>>()
        .join("\n")
}

/// The first path segments after each `prefix` (`crate::`, `super::`), brace groups expanded one
/// level: `crate::{space::Arch, store}` gives `space` and `store`.
fn segments_after(code: &str, prefix: &str) -> BTreeSet<String> {
    let mut out = BTreeSet::new();
    let mut rest = code;
    while let Some(at) = rest.find(prefix) {
        let preceded_by_path =
            rest[..at].chars().last().is_some_and(|c| c.is_alphanumeric() || c == '_' || c == ':');
        rest = &rest[at + prefix.len()..];
        if preceded_by_path {
            continue;
        }
        if let Some(group) = rest.strip_prefix('{') {
            let mut depth = 1;
            let mut item = String::new();
            let mut items = Vec::new();
            for c in group.chars() {
                match c {
                    '{' => depth += 1,
                    '}' if depth == 1 => break,
                    '}' => depth -= 1,
                    ',' if depth == 1 => items.push(std::mem::take(&mut item)),
                    _ if depth == 1 => item.push(c),
                    _ => {}
                }
            }
            items.push(item);
            for item in items {
                let name: String =
                    item.trim().chars().take_while(|c| c.is_alphanumeric() || *c == '_').collect();
                if !name.is_empty() {
                    out.insert(name);
                }
            }
        } else {
            let name: String = rest.chars().take_while(|c| c.is_alphanumeric() || *c == '_').collect();
            out.insert(name);
        }
    }
    out
}

/// The crate's top-level modules, as `src/lib.rs` declares them; other root items (`Error`,
/// `build_info`) belong to no layer.
fn crate_modules() -> BTreeSet<String> {
    let lib = std::fs::read_to_string(source_root().join("lib.rs")).unwrap();
    lib.lines()
        .filter_map(|l| l.trim().strip_prefix("pub mod ").or_else(|| l.trim().strip_prefix("mod ")))
        .filter_map(|rest| rest.strip_suffix(';'))
        .map(str::to_string)
        .collect()
}

/// The top-level module a file belongs to (`src/query/nas/mod.rs` → `query`), `None` for the
/// crate root files.
fn top_module(file: &Path) -> Option<String> {
    let relative = file.strip_prefix(source_root()).unwrap();
    let mut parts = relative.components().map(|c| c.as_os_str().to_string_lossy().into_owned());
    let first = parts.next()?;
    match first.strip_suffix(".rs") {
        Some("lib" | "main") => None,
        Some(stem) => Some(stem.to_string()),
        None => Some(first),
    }
}

/// Modules imported by each top-level module, with the file that imports each.
fn module_imports() -> BTreeMap<String, BTreeMap<String, PathBuf>> {
    let modules = crate_modules();
    let mut imports: BTreeMap<String, BTreeMap<String, PathBuf>> = BTreeMap::new();
    for file in rust_files(&source_root()) {
        let Some(module) = top_module(&file) else { continue };
        let code = code_of(&std::fs::read_to_string(&file).unwrap());
        let prefix = if module == "cli" { "nasrob::" } else { "crate::" };
        let entry = imports.entry(module.clone()).or_default();
        for name in segments_after(&code, prefix).into_iter().filter(|n| modules.contains(n) && *n != module)
        {
            entry.entry(name).or_insert_with(|| file.clone());
        }
    }
    imports
}

fn forbidden_imports(table: &BTreeMap<String, Row>) -> Vec<String> {
    let mut problems = Vec::new();
    for (module, imported) in module_imports() {
        let Some(row) = table.get(&module) else {
            problems.push(format!("src/{module} has no row in docs/architecture.md's table"));
            continue;
        };
        if row.may_import.contains("*") {
            continue;
        }
        for (name, file) in imported {
            if !row.may_import.contains(&name) && !SHARED.contains(&name.as_str()) {
                problems.push(format!("{} imports `{name}`, which `{module}` may not", file.display()));
            }
        }
    }
    for file in rust_files(&source_root()) {
        let Some(module) = top_module(&file) else { continue };
        let torch = table.get(&module).is_some_and(|r| r.torch || r.may_import.contains("*"));
        let code = code_of(&std::fs::read_to_string(&file).unwrap());
        if !torch && !segments_after(&code, "tch::").is_empty() {
            problems.push(format!("{} names `tch`, but `{module}` is not a torch module", file.display()));
        }
    }
    problems
}

/// A circle in `edges`, as the list of nodes around it.
fn find_circle(edges: &BTreeMap<String, BTreeSet<String>>) -> Option<Vec<String>> {
    fn visit(
        node: &str,
        edges: &BTreeMap<String, BTreeSet<String>>,
        path: &mut Vec<String>,
        done: &mut BTreeSet<String>,
    ) -> Option<Vec<String>> {
        if let Some(at) = path.iter().position(|n| n == node) {
            let mut circle = path[at..].to_vec();
            circle.push(node.to_string());
            return Some(circle);
        }
        if done.contains(node) {
            return None;
        }
        path.push(node.to_string());
        for next in edges.get(node).into_iter().flatten() {
            if let Some(circle) = visit(next, edges, path, done) {
                return Some(circle);
            }
        }
        path.pop();
        done.insert(node.to_string());
        None
    }
    let mut done = BTreeSet::new();
    edges.keys().find_map(|start| visit(start, edges, &mut Vec::new(), &mut done))
}

/// Edges between sibling files of one folder, from explicit paths (`super::sibling::`,
/// `crate::<module path>::sibling::`); a folder's `mod.rs`, which declares and re-exports its
/// files, is left out.
fn sibling_edges(folder: &Path) -> BTreeMap<String, BTreeSet<String>> {
    let siblings: BTreeSet<String> = std::fs::read_dir(folder)
        .unwrap()
        .flatten()
        .filter_map(|e| {
            let name = e.file_name().to_string_lossy().into_owned();
            match name.strip_suffix(".rs") {
                Some("mod") => None,
                Some(stem) => Some(stem.to_string()),
                None => e.path().is_dir().then_some(name),
            }
        })
        .collect();
    let module_path = folder.strip_prefix(source_root()).unwrap().to_string_lossy().replace('/', "::");
    let mut edges = BTreeMap::new();
    for sibling in &siblings {
        let path = folder.join(format!("{sibling}.rs"));
        let files = if path.is_file() { vec![path] } else { rust_files(&folder.join(sibling)) };
        let mut targets = BTreeSet::new();
        for file in files {
            let code = code_of(&std::fs::read_to_string(&file).unwrap());
            // `super::` climbs one module per file below `folder`; a `mod.rs` is its folder's module.
            let below = file.strip_prefix(folder).unwrap().components().count();
            let depth = if file.ends_with("mod.rs") { below - 1 } else { below };
            for prefix in ["super::".repeat(depth), format!("crate::{module_path}::")] {
                targets.extend(segments_after(&code, &prefix).into_iter().filter(|n| siblings.contains(n)));
            }
        }
        targets.remove(sibling);
        edges.insert(sibling.clone(), targets);
    }
    edges
}

#[test]
fn modules_import_only_what_the_architecture_page_allows() {
    let markdown =
        std::fs::read_to_string(Path::new(env!("CARGO_MANIFEST_DIR")).join("docs/architecture.md")).unwrap();
    let table = layering_table(&markdown);
    assert!(table.len() >= 12, "the table of docs/architecture.md has {} rows", table.len());
    let problems = forbidden_imports(&table);
    assert!(problems.is_empty(), "layering violations:\n{}", problems.join("\n"));
}

#[test]
fn no_module_or_file_imports_in_a_circle() {
    let graph: BTreeMap<String, BTreeSet<String>> =
        module_imports().into_iter().map(|(m, imported)| (m, imported.into_keys().collect())).collect();
    assert_eq!(find_circle(&graph), None, "top-level modules import each other in a circle");
    let folders: Vec<PathBuf> = crate::common::files_under(&source_root())
        .into_iter()
        .filter_map(|f| f.parent().map(Path::to_path_buf))
        .collect::<BTreeSet<_>>()
        .into_iter()
        .collect();
    for folder in folders {
        let circle = find_circle(&sibling_edges(&folder));
        assert_eq!(circle, None, "files of {} import each other in a circle", folder.display());
    }
}

/// The checks themselves: a forbidden import, a circle and a brace group are found.
#[test]
fn the_layering_checks_find_what_they_look_for() {
    let names = segments_after(
        "use crate::{space::{Arch, Op}, store::Bench, Error};\nuse crate::query::x;",
        "crate::",
    );
    assert_eq!(names, ["Error", "query", "space", "store"].map(String::from).into());
    let table = layering_table(
        "| `query` | lookups | `store`, `space` |\n| `attack` (torch) | x | `model`; never `store` |",
    );
    assert!(table["query"].may_import.contains("store") && !table["query"].torch);
    assert!(table["attack"].torch && !table["attack"].may_import.contains("store"));
    let edges: BTreeMap<String, BTreeSet<String>> = [
        ("a".to_string(), ["b".to_string()].into()),
        ("b".to_string(), ["c".to_string()].into()),
        ("c".to_string(), ["a".to_string()].into()),
    ]
    .into();
    assert_eq!(find_circle(&edges), Some(["a", "b", "c", "a"].map(String::from).to_vec()));
    assert_eq!(
        code_of("use crate::store; // crate::query\n#[cfg(test)]\nmod tests { use crate::x; }"),
        "use crate::store; "
    );
}
