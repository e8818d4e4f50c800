//! The map in `docs/ARCHITECTURE.md` is the tree: every source file under
//! `src/` is named in it, and everything it names exists.

use std::collections::BTreeSet;
use std::path::Path;

/// The paths the map names, from its indented listing.
fn mapped() -> Vec<String> {
    let doc = std::fs::read_to_string(concat!(env!("CARGO_MANIFEST_DIR"), "/docs/ARCHITECTURE.md"))
        .unwrap();
    let map = doc.split("## The map").nth(1).expect("a map");
    let block = map.split("```").nth(1).expect("the map's listing");
    let mut stack: Vec<(usize, String)> = Vec::new();
    let mut out = Vec::new();
    for line in block.lines() {
        let indent = line.len() - line.trim_start().len();
        let Some(name) = line.split_whitespace().next() else {
            continue;
        };
        // Descriptions wrap far to the right; entries start near the left.
        if indent >= 20 || !(name.ends_with(".rs") || name.ends_with('/')) {
            continue;
        }
        stack.retain(|(i, _)| *i < indent);
        let parent: String = stack.iter().map(|(_, d)| d.as_str()).collect();
        if name.ends_with('/') {
            stack.push((indent, name.to_string()));
        }
        out.push(format!("{parent}{name}"));
    }
    out
}

fn sources(dir: &Path, out: &mut BTreeSet<String>) {
    for e in std::fs::read_dir(dir).unwrap().flatten() {
        let p = e.path();
        if p.is_dir() {
            sources(&p, out);
        } else if p.extension().is_some_and(|x| x == "rs") {
            let root = Path::new(env!("CARGO_MANIFEST_DIR"));
            out.insert(p.strip_prefix(root).unwrap().display().to_string());
        }
    }
}

#[test]
fn the_architecture_map_names_every_source_file() {
    let root = Path::new(env!("CARGO_MANIFEST_DIR"));
    let named = mapped();
    for path in &named {
        let p = path.split('{').next().unwrap();
        assert!(
            root.join(p).exists(),
            "the map names {path}, which is not in the tree"
        );
    }
    let named: BTreeSet<String> = named.into_iter().filter(|p| p.ends_with(".rs")).collect();
    let mut tree = BTreeSet::new();
    sources(&root.join("src"), &mut tree);
    let missing: Vec<&String> = tree.difference(&named).collect();
    assert!(
        missing.is_empty(),
        "source files missing from the map in docs/ARCHITECTURE.md: {missing:?}"
    );
}
