//! docs/ARCHITECTURE.md stays true: it names every workspace crate's folder,
//! and the modules of `train/src` import no circle (an objective sees a
//! narrow view of the step, not the trainer that calls it).

use std::collections::{BTreeMap, BTreeSet};
use std::path::{Path, PathBuf};

fn root() -> &'static Path {
    Path::new(env!("CARGO_MANIFEST_DIR"))
}

#[test]
fn the_architecture_page_names_every_crate() {
    let cargo = std::fs::read_to_string(root().join("Cargo.toml")).unwrap();
    let members = cargo.lines().find(|l| l.starts_with("members")).expect("a workspace members line");
    let page = std::fs::read_to_string(root().join("docs/ARCHITECTURE.md")).unwrap();
    let folders: Vec<&str> = members.split('"').skip(1).step_by(2).collect();
    assert!(folders.len() >= 7, "{members}");
    for folder in folders.iter().copied().chain(["src", "tests"]) {
        assert!(page.contains(&format!("| `{folder}/` |")), "docs/ARCHITECTURE.md has no row for `{folder}/`");
    }
}

/// The top-level module each `crate::NAME` names: a module, or what lib.rs re-exports from one.
fn module_of(name: &str, modules: &BTreeSet<String>, reexports: &BTreeMap<String, String>) -> Option<String> {
    if modules.contains(name) {
        return Some(name.to_string());
    }
    reexports.get(name).cloned()
}

/// (module, the modules it imports) for a crate's `src/`, tests left out.
fn import_graph(src: &Path) -> BTreeMap<String, BTreeSet<String>> {
    let mut files = Vec::new();
    let mut stack = vec![src.to_path_buf()];
    while let Some(dir) = stack.pop() {
        for e in std::fs::read_dir(&dir).unwrap() {
            let p = e.unwrap().path();
            if p.is_dir() {
                stack.push(p);
            } else if p.extension().is_some_and(|x| x == "rs") {
                files.push(p);
            }
        }
    }
    let top = |p: &PathBuf| p.strip_prefix(src).unwrap().components().next().unwrap().as_os_str().to_string_lossy().trim_end_matches(".rs").to_string();
    let modules: BTreeSet<String> = files.iter().map(top).filter(|m| m != "lib").collect();
    // `pub use config::{Method, TrainConfig};` in lib.rs: Method is config's.
    let lib = std::fs::read_to_string(src.join("lib.rs")).unwrap();
    let mut reexports = BTreeMap::new();
    for line in lib.lines().filter_map(|l| l.trim().strip_prefix("pub use ")) {
        if let Some((module, names)) = line.split_once("::") {
            for name in names.trim_end_matches(';').trim_matches(|c| c == '{' || c == '}').split(',') {
                reexports.insert(name.trim().to_string(), module.to_string());
            }
        }
    }
    let mut graph: BTreeMap<String, BTreeSet<String>> = modules.iter().map(|m| (m.clone(), BTreeSet::new())).collect();
    for f in &files {
        let from = top(f);
        if from == "lib" {
            continue;
        }
        let text = std::fs::read_to_string(f).unwrap();
        let code = text.split("#[cfg(test)]").next().unwrap();
        for (i, _) in code.match_indices("crate::") {
            let name: String = code[i + 7..].chars().take_while(|c| c.is_alphanumeric() || *c == '_').collect();
            if let Some(to) = module_of(&name, &modules, &reexports).filter(|to| *to != from) {
                graph.get_mut(&from).unwrap().insert(to);
            }
        }
    }
    graph
}

/// A circle of imports, if there is one.
fn circle(graph: &BTreeMap<String, BTreeSet<String>>) -> Option<Vec<String>> {
    fn visit(n: &str, g: &BTreeMap<String, BTreeSet<String>>, path: &mut Vec<String>, done: &mut BTreeSet<String>) -> Option<Vec<String>> {
        if let Some(at) = path.iter().position(|p| p == n) {
            let mut c = path[at..].to_vec();
            c.push(n.to_string());
            return Some(c);
        }
        if !done.insert(n.to_string()) {
            return None;
        }
        path.push(n.to_string());
        for m in &g[n] {
            if let Some(c) = visit(m, g, path, done) {
                return Some(c);
            }
        }
        path.pop();
        None
    }
    let mut done = BTreeSet::new();
    graph.keys().find_map(|n| visit(n, graph, &mut Vec::new(), &mut done))
}

#[test]
fn train_modules_import_no_circle() {
    let graph = import_graph(&root().join("train/src"));
    assert!(graph.contains_key("methods") && graph["trainer"].contains("methods"), "{graph:?}");
    if let Some(c) = circle(&graph) {
        panic!("train/src imports in a circle: {}", c.join(" -> "));
    }
}

#[test]
fn a_circle_is_found() {
    let g: BTreeMap<String, BTreeSet<String>> = [("a", vec!["b"]), ("b", vec!["c"]), ("c", vec!["a"]), ("d", vec![])]
        .into_iter()
        .map(|(k, v)| (k.to_string(), v.into_iter().map(String::from).collect()))
        .collect();
    assert_eq!(circle(&g), Some(vec!["a".into(), "b".into(), "c".into(), "a".into()]));
}
