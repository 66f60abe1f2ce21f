//! No two source files of `api/` or `db/` import each other, directly or round a loop: each
//! file's `crate::` paths (doc comments aside) are resolved to the file that defines them, and the
//! graph of files must have no cycle. A cycle is what made every change to the read model a
//! change to the data layer too.

use std::collections::{BTreeMap, BTreeSet};
use std::path::{Path, PathBuf};

fn rust_files(dir: &Path, found: &mut Vec<PathBuf>) {
    for entry in std::fs::read_dir(dir).unwrap_or_else(|e| panic!("{}: {e}", dir.display())) {
        let path = entry.unwrap().path();
        if path.is_dir() {
            rust_files(&path, found);
        } else if path.extension().is_some_and(|e| e == "rs") {
            found.push(path);
        }
    }
}

/// The file that defines the longest prefix of `parts` below `root`.
fn defining_file(root: &Path, parts: &[&str]) -> Option<PathBuf> {
    (1..=parts.len()).rev().find_map(|n| {
        let base = parts[..n].iter().fold(root.to_path_buf(), |path, part| path.join(part));
        [base.with_extension("rs"), base.join("mod.rs")].into_iter().find(|candidate| candidate.exists())
    })
}

/// The files a file imports through `crate::` paths, braces expanded one level; comments and
/// `#[cfg(test)]` modules left out.
fn imports(root: &Path, file: &Path) -> BTreeSet<PathBuf> {
    let text = std::fs::read_to_string(file).unwrap();
    let code: String = text
        .split("#[cfg(test)]\nmod tests")
        .next()
        .unwrap_or_default()
        .lines()
        .filter(|line| !line.trim_start().starts_with("//"))
        .collect::<Vec<_>>()
        .join("\n");
    let mut found = BTreeSet::new();
    for (at, _) in code.match_indices("crate::") {
        let rest = &code[at + "crate::".len()..];
        let path: String =
            rest.chars().take_while(|c| c.is_alphanumeric() || *c == '_' || *c == ':').collect();
        let parts: Vec<&str> = path.split("::").filter(|p| !p.is_empty()).collect();
        let mut targets = vec![parts.clone()];
        if rest[path.len()..].starts_with('{') {
            let inner = rest[path.len() + 1..].split('}').next().unwrap_or_default();
            targets = inner
                .split(',')
                .filter_map(|item| item.split("::").next())
                .map(str::trim)
                .filter(|item| !item.is_empty())
                .map(|item| parts.iter().copied().chain([item]).collect())
                .collect();
        }
        for target in targets {
            if let Some(defining) = defining_file(root, &target)
                && defining != file
            {
                found.insert(defining);
            }
        }
    }
    found
}

/// A cycle in the graph, if there is one, as the files round it.
fn a_cycle(graph: &BTreeMap<PathBuf, BTreeSet<PathBuf>>) -> Option<Vec<PathBuf>> {
    fn visit(
        file: &PathBuf,
        graph: &BTreeMap<PathBuf, BTreeSet<PathBuf>>,
        path: &mut Vec<PathBuf>,
        done: &mut BTreeSet<PathBuf>,
    ) -> Option<Vec<PathBuf>> {
        if let Some(start) = path.iter().position(|f| f == file) {
            return Some(path[start..].to_vec());
        }
        if done.contains(file) {
            return None;
        }
        path.push(file.clone());
        for next in graph.get(file).into_iter().flatten() {
            if let Some(cycle) = visit(next, graph, path, done) {
                return Some(cycle);
            }
        }
        path.pop();
        done.insert(file.clone());
        None
    }
    let mut done = BTreeSet::new();
    graph.keys().find_map(|file| visit(file, graph, &mut Vec::new(), &mut done))
}

fn graph_of(crate_dir: &str) -> BTreeMap<PathBuf, BTreeSet<PathBuf>> {
    let root = Path::new(env!("CARGO_MANIFEST_DIR")).join("..").join(crate_dir).join("src");
    let mut files = Vec::new();
    rust_files(&root, &mut files);
    files.iter().map(|file| (file.clone(), imports(&root, file))).collect()
}

#[test]
fn no_two_files_of_db_or_api_import_each_other() {
    for crate_dir in ["db", "api"] {
        let graph = graph_of(crate_dir);
        let edges: usize = graph.values().map(BTreeSet::len).sum();
        assert!(graph.len() > 10 && edges > 20, "{crate_dir}: read {} files, {edges} imports", graph.len());
        if let Some(cycle) = a_cycle(&graph) {
            let names: Vec<String> = cycle.iter().map(|f| f.display().to_string()).collect();
            panic!("{crate_dir}: these files import each other round a loop:\n{}", names.join("\n -> "));
        }
    }
}
