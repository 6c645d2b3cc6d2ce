//! Tidy checks on the workspace shape (rust-analyzer's `xtask/src/tidy.rs`): the crate
//! layering, the module graph inside each crate and the file sizes are tests, not
//! conventions.

mod cycles;
mod file_size;
mod sources;

use std::path::{Path, PathBuf};

use pretty_assertions::assert_eq;

/// Layer of each workspace package; a package may only depend on lower layers.
fn rank(package: &str) -> Option<u8> {
    Some(match package {
        "ferry-sse" => 0,
        "ferry-apicompat" => 1,
        "ferry-session" | "ferry-sim" => 2,
        "ferry-accounts" => 3,
        "ferry-server" => 4,
        "ferry" | "xtask" | "ferry-bench" => 5,
        _ => return None,
    })
}

const TESTKIT: &str = "ferry-testkit";
/// What the pure, embeddable crates must never pull in.
const RUNTIME_CRATES: &[&str] = &["tokio", "hyper", "hyper-util", "reqwest"];

fn manifests() -> Vec<PathBuf> {
    let root = ferry_testkit::workspace_root();
    let mut out = Vec::new();
    for dir in ["crates", "bins"] {
        for entry in std::fs::read_dir(root.join(dir)).unwrap() {
            let p = entry.unwrap().path().join("Cargo.toml");
            if p.exists() {
                out.push(p);
            }
        }
    }
    out.sort();
    out
}

fn table_keys(manifest: &toml::Value, section: &str) -> Vec<String> {
    manifest
        .get(section)
        .and_then(toml::Value::as_table)
        .map(|t| t.keys().cloned().collect())
        .unwrap_or_default()
}

/// Problems in one manifest (empty = fine).
fn check_manifest(path: &Path) -> Vec<String> {
    let text = std::fs::read_to_string(path).unwrap();
    let manifest: toml::Value = toml::from_str(&text).unwrap();
    let name = manifest["package"]["name"].as_str().unwrap().to_owned();
    let folder = path
        .parent()
        .unwrap()
        .file_name()
        .unwrap()
        .to_str()
        .unwrap()
        .to_owned();
    let mut problems = Vec::new();
    if folder != name && path.parent().unwrap().parent().unwrap().ends_with("crates") {
        problems.push(format!(
            "{name}: folder is named {folder}, it must equal the package name"
        ));
    }
    let deps = table_keys(&manifest, "dependencies");
    let build_deps = table_keys(&manifest, "build-dependencies");
    let dev_deps = table_keys(&manifest, "dev-dependencies");

    if name == TESTKIT {
        for d in deps.iter().filter(|d| d.starts_with("ferry")) {
            if !matches!(d.as_str(), "ferry-apicompat" | "ferry-sse") {
                problems.push(format!(
                    "{TESTKIT} may depend on ferry-apicompat/ferry-sse only, not {d}"
                ));
            }
        }
        return problems;
    }
    let Some(own) = rank(&name) else {
        problems.push(format!(
            "{name}: unknown package; give it a layer in tidy.rs"
        ));
        return problems;
    };
    for d in deps.iter().chain(&build_deps) {
        if d == TESTKIT {
            problems.push(format!("{name}: {TESTKIT} may only be a dev-dependency"));
        }
    }
    for d in deps.iter().chain(&build_deps).chain(&dev_deps) {
        if let Some(r) = rank(d)
            && r >= own
        {
            problems.push(format!("{name} (layer {own}) depends on {d} (layer {r}): lower crates never import higher ones"));
        }
    }
    if matches!(name.as_str(), "ferry-apicompat" | "ferry-sse") {
        for d in deps.iter().chain(&build_deps) {
            if RUNTIME_CRATES.contains(&d.as_str()) {
                problems.push(format!("{name} is runtime-free and must not depend on {d}"));
            }
        }
    }
    problems
}

#[test]
fn lower_crates_never_depend_on_higher_ones() {
    let ms = manifests();
    assert!(
        ms.len() >= 8,
        "expected every workspace member, found {ms:?}"
    );
    let problems: Vec<String> = ms.iter().flat_map(|p| check_manifest(p)).collect();
    assert_eq!(problems, Vec::<String>::new());
}

#[test]
fn the_check_catches_violations() {
    let dir = std::env::temp_dir().join(format!("ferry-tidy-{}", std::process::id()));
    let write = |folder: &str, body: &str| {
        let d = dir.join("crates").join(folder);
        std::fs::create_dir_all(&d).unwrap();
        let p = d.join("Cargo.toml");
        std::fs::write(&p, body).unwrap();
        p
    };
    let up = write(
        "ferry-sse",
        "[package]\nname = \"ferry-sse\"\n[dependencies]\nferry-server = { path = \"x\" }\ntokio = \"1\"\n",
    );
    let tk = write(
        "ferry-testkit",
        "[package]\nname = \"ferry-testkit\"\n[dependencies]\nferry-session = \"1\"\n",
    );
    let dev = write(
        "ferry-session",
        "[package]\nname = \"ferry-session\"\n[dev-dependencies]\nferry-testkit = \"1\"\nferry-apicompat = \"1\"\n",
    );
    let got = vec![
        check_manifest(&up),
        check_manifest(&tk),
        check_manifest(&dev),
    ];
    std::fs::remove_dir_all(&dir).unwrap();
    assert_eq!(
        got,
        vec![
            vec![
                "ferry-sse (layer 0) depends on ferry-server (layer 4): lower crates never import higher ones".to_owned(),
                "ferry-sse is runtime-free and must not depend on tokio".to_owned(),
            ],
            vec!["ferry-testkit may depend on ferry-apicompat/ferry-sse only, not ferry-session".to_owned()],
            Vec::<String>::new(),
        ]
    );
}
