//! The shape of the code, checked on the source tree: no import circle between the files of a
//! crate, no source file over 600 lines, and the optimiser stepped by the training engine alone.

use std::collections::{BTreeMap, BTreeSet};
use std::path::{Path, PathBuf};

fn workspace() -> PathBuf {
    Path::new(env!("CARGO_MANIFEST_DIR")).join("../..").canonicalize().unwrap()
}

fn rust_files(dir: &Path, out: &mut Vec<PathBuf>) {
    for entry in std::fs::read_dir(dir).unwrap().flatten() {
        let p = entry.path();
        if p.is_dir() {
            rust_files(&p, out);
        } else if p.extension().is_some_and(|e| e == "rs") {
            out.push(p);
        }
    }
}

/// The module path of a source file relative to its crate's `src` (`engine/mod.rs` -> `engine`).
fn module_of(src: &Path, file: &Path) -> Vec<String> {
    let rel = file.strip_prefix(src).unwrap().with_extension("");
    let mut parts: Vec<String> = rel.iter().map(|s| s.to_string_lossy().into_owned()).collect();
    if matches!(parts.last().map(String::as_str), Some("mod" | "lib" | "main")) {
        parts.pop();
    }
    parts
}

/// The file a module path lives in: the longest prefix that names a file (`a/b.rs`,
/// `a/b/mod.rs`); the crate root otherwise.
fn file_of(src: &Path, root: &Path, path: &[String]) -> PathBuf {
    for k in (1..=path.len()).rev() {
        let base = path[..k].iter().fold(src.to_path_buf(), |p, s| p.join(s));
        for f in [base.with_extension("rs"), base.join("mod.rs")] {
            if f.is_file() {
                return f;
            }
        }
    }
    root.to_path_buf()
}

/// The paths a `crate::` / `super::` use names, each as segments from its start (`{a, b::c}`
/// groups expanded to their leading segments).
fn paths_after(text: &str) -> Vec<Vec<String>> {
    let mut out = vec![];
    let bytes: Vec<char> = text.chars().collect();
    fn parse(b: &[char], i: &mut usize, prefix: Vec<String>, out: &mut Vec<Vec<String>>) {
        let mut segs = prefix;
        loop {
            let start = *i;
            while *i < b.len() && (b[*i].is_alphanumeric() || b[*i] == '_') {
                *i += 1;
            }
            if *i > start {
                segs.push(b[start..*i].iter().collect());
            }
            if *i + 1 < b.len() && b[*i] == ':' && b[*i + 1] == ':' {
                *i += 2;
                if *i < b.len() && b[*i] == '{' {
                    *i += 1;
                    loop {
                        while *i < b.len() && b[*i].is_whitespace() {
                            *i += 1;
                        }
                        if *i >= b.len() || b[*i] == '}' {
                            *i += 1;
                            return;
                        }
                        parse(b, i, segs.clone(), out);
                        while *i < b.len() && b[*i] != ',' && b[*i] != '}' {
                            *i += 1;
                        }
                        if *i < b.len() && b[*i] == ',' {
                            *i += 1;
                        }
                    }
                }
                continue;
            }
            out.push(segs);
            return;
        }
    }
    for key in ["crate::", "super::"] {
        let mut from = 0;
        while let Some(pos) = text[from..].find(key) {
            let at = from + pos;
            let before = text[..at].chars().last();
            from = at + key.len();
            if before.is_some_and(|c| c.is_alphanumeric() || c == '_' || c == ':' || c == '$') {
                continue;
            }
            let mut i = text[..at].chars().count();
            let mut segs = vec![];
            parse(&bytes, &mut i, vec![], &mut segs);
            for s in segs {
                out.push(s);
            }
        }
    }
    out
}

/// Source text that imports: no comment lines, nothing from the first `#[cfg(test)]` on.
fn code(text: &str) -> String {
    let text = text.split("#[cfg(test)]").next().unwrap_or("");
    text.lines().filter(|l| !l.trim_start().starts_with("//")).collect::<Vec<_>>().join("\n")
}

fn crate_sources() -> Vec<(String, PathBuf, PathBuf, Vec<PathBuf>)> {
    let mut crates = vec![];
    for entry in std::fs::read_dir(workspace().join("crates")).unwrap().flatten() {
        let src = entry.path().join("src");
        let root = if src.join("lib.rs").is_file() { src.join("lib.rs") } else { src.join("main.rs") };
        let mut files = vec![];
        rust_files(&src, &mut files);
        crates.push((entry.file_name().to_string_lossy().into_owned(), src, root, files));
    }
    crates
}

/// Files of one crate and the files each imports from.
fn import_graph(src: &Path, root: &Path, files: &[PathBuf]) -> BTreeMap<PathBuf, BTreeSet<PathBuf>> {
    let mut graph = BTreeMap::new();
    for f in files {
        if f.strip_prefix(src).unwrap().starts_with("bin") {
            continue; // binaries are crates of their own
        }
        let here = module_of(src, f);
        let mut deps = BTreeSet::new();
        for p in paths_after(&code(&std::fs::read_to_string(f).unwrap())) {
            let module: Vec<String> = if p[0] == "crate" {
                p[1..].to_vec()
            } else {
                let ups = p.iter().take_while(|s| *s == "super").count();
                let mut m = here.clone();
                m.truncate(m.len().saturating_sub(ups));
                m.extend(p[ups..].iter().cloned());
                m
            };
            let target = file_of(src, root, &module);
            if &target != f {
                deps.insert(target);
            }
        }
        graph.insert(f.clone(), deps);
    }
    graph
}

/// A circle in `graph`, if any, as the files around it.
fn find_circle(graph: &BTreeMap<PathBuf, BTreeSet<PathBuf>>) -> Option<Vec<PathBuf>> {
    fn visit(n: &PathBuf, g: &BTreeMap<PathBuf, BTreeSet<PathBuf>>, state: &mut BTreeMap<PathBuf, u8>, stack: &mut Vec<PathBuf>) -> Option<Vec<PathBuf>> {
        state.insert(n.clone(), 1);
        stack.push(n.clone());
        for m in g.get(n).into_iter().flatten() {
            match state.get(m) {
                Some(1) => {
                    let at = stack.iter().position(|s| s == m).unwrap();
                    return Some(stack[at..].to_vec());
                }
                Some(_) => {}
                None => {
                    if let Some(c) = visit(m, g, state, stack) {
                        return Some(c);
                    }
                }
            }
        }
        stack.pop();
        state.insert(n.clone(), 2);
        None
    }
    let mut state = BTreeMap::new();
    for n in graph.keys() {
        if !state.contains_key(n) {
            if let Some(c) = visit(n, graph, &mut state, &mut vec![]) {
                return Some(c);
            }
        }
    }
    None
}

#[test]
fn no_import_circle_between_the_files_of_a_crate() {
    for (name, src, root, files) in crate_sources() {
        let graph = import_graph(&src, &root, &files);
        if let Some(c) = find_circle(&graph) {
            let names: Vec<String> = c.iter().map(|p| p.strip_prefix(&src).unwrap().display().to_string()).collect();
            panic!("{name}: import circle {}", names.join(" -> "));
        }
    }
}

/// The checker finds a circle where there is one and follows `super::` and grouped paths.
#[test]
fn the_circle_check_sees_a_planted_circle() {
    let dir = std::env::temp_dir().join(format!("strata-layout-{}", std::process::id()));
    let src = dir.join("src");
    std::fs::create_dir_all(src.join("a")).unwrap();
    std::fs::write(src.join("lib.rs"), "pub mod a;\npub mod b;\n").unwrap();
    std::fs::write(src.join("a/mod.rs"), "pub mod x;\n").unwrap();
    std::fs::write(src.join("a/x.rs"), "use crate::{b::Thing, a::y};\n").unwrap();
    std::fs::write(src.join("b.rs"), "use crate::a::x::Other;\n").unwrap();
    let files: Vec<PathBuf> = ["lib.rs", "a/mod.rs", "a/x.rs", "b.rs"].iter().map(|f| src.join(f)).collect();
    let c = find_circle(&import_graph(&src, &src.join("lib.rs"), &files)).expect("a circle");
    assert_eq!(c.len(), 2, "{c:?}");
    // Without b's import there is none; `super::` from a/x.rs names a/mod.rs.
    std::fs::write(src.join("b.rs"), "// use crate::a::x::Other;\n").unwrap();
    std::fs::write(src.join("a/x.rs"), "use super::Thing;\nuse crate::b::Thing;\n").unwrap();
    let g = import_graph(&src, &src.join("lib.rs"), &files);
    assert!(find_circle(&g).is_none());
    assert!(g[&src.join("a/x.rs")].contains(&src.join("a/mod.rs")));
    std::fs::remove_dir_all(&dir).unwrap();
}

#[test]
fn no_source_file_is_over_600_lines() {
    let mut files = vec![];
    rust_files(&workspace().join("crates"), &mut files);
    // The Python package's modules and tests too.
    let mut stack = vec![workspace().join("python")];
    while let Some(dir) = stack.pop() {
        for p in std::fs::read_dir(dir).into_iter().flatten().flatten().map(|e| e.path()) {
            if p.is_dir() {
                stack.push(p);
            } else if p.extension().is_some_and(|e| e == "py" || e == "pyi") {
                files.push(p);
            }
        }
    }
    assert!(files.iter().any(|f| f.ends_with("python/strata/run.py")), "the Python package is checked too");
    let long: Vec<String> = files
        .iter()
        .filter_map(|f| {
            let n = std::fs::read_to_string(f).unwrap().lines().count();
            (n > 600).then(|| format!("{} ({n} lines)", f.display()))
        })
        .collect();
    assert!(long.is_empty(), "split these files: {long:?}");
}

/// One training loop: `optim.step` / `.step(lr` appear in strata-train's engine alone among
/// strata-train and strata-finetune, tests included (the issue's
/// `grep -rn "optim.step\|\.step(lr" crates/strata-train crates/strata-finetune`).
#[test]
fn the_optimiser_steps_in_the_engine_alone() {
    let ws = workspace();
    let mut files = vec![];
    for c in ["crates/strata-train", "crates/strata-finetune"] {
        rust_files(&ws.join(c), &mut files);
    }
    let engine = ws.join("crates/strata-train/src/engine/mod.rs");
    let mut found = vec![];
    for f in files {
        let text = std::fs::read_to_string(&f).unwrap();
        if text.lines().any(|l| l.contains("optim.step") || l.contains(".step(lr")) {
            found.push(f);
        }
    }
    assert_eq!(found, vec![engine]);
}
