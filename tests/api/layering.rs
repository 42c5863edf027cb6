//! The layers of ARCHITECTURE.md, checked on the source: a module may only import what
//! lies below it. A new `use crate::…` that runs up a layer fails here.

use std::path::{Path, PathBuf};

/// (where, the crate modules it must not import, why)
const RULES: &[(&str, &[&str], &str)] = &[
    (
        "src/domain",
        &[
            "app",
            "cli",
            "commands",
            "config",
            "control",
            "exactly_once",
            "http",
            "jobs",
            "local",
            "outbox",
            "reload",
            "service",
            "state",
            "store",
            "web",
            "wecom",
        ],
        "the domain is pure: no I/O, no configuration types",
    ),
    (
        "src/store",
        &[
            "app",
            "cli",
            "commands",
            "config",
            "control",
            "exactly_once",
            "http",
            "jobs",
            "local",
            "outbox",
            "reload",
            "service",
            "state",
            "web",
        ],
        "the store holds SQL only, over domain types",
    ),
    (
        "src/service",
        &["app", "cli", "commands", "control", "exactly_once", "http", "jobs", "local", "reload", "state", "web"],
        "the service is called by the front ends and jobs, never the other way",
    ),
    (
        "src/jobs",
        &["app", "cli", "commands", "control", "http", "reload", "web"],
        "jobs call the service, not the chat front end",
    ),
    (
        "src/commands",
        &["app", "cli", "control", "http", "jobs", "reload", "state", "web"],
        "the chat front end calls the service",
    ),
    ("src/http", &["app", "cli", "control", "jobs", "reload"], "handlers use the shared state, not the startup code"),
    (
        "src/web",
        &["app", "cli", "control", "exactly_once", "http", "jobs", "local", "outbox", "reload"],
        "the console is a front end over the service, beside the chat's",
    ),
    (
        "src/board",
        &["app", "cli", "commands", "control", "exactly_once", "http", "jobs", "reload", "store"],
        "the TV board is a front end over the service, like the chat",
    ),
    (
        "src/exactly_once.rs",
        &["app", "cli", "control", "jobs", "reload"],
        "callbacks use the shared state, not the startup code",
    ),
    ("src/reload.rs", &["app", "cli", "commands", "control", "http"], "a reload runs over the state and the service"),
];

fn rust_files(path: &Path) -> Vec<PathBuf> {
    if path.is_file() {
        return vec![path.to_owned()];
    }
    let mut files = Vec::new();
    for entry in std::fs::read_dir(path).expect("source directory") {
        files.extend(rust_files(&entry.expect("entry").path()));
    }
    files.retain(|f| f.extension().is_some_and(|e| e == "rs"));
    files
}

/// The crate modules a file names: `crate::x`, and `x` in `use crate::{x, y::z}`.
fn imported(source: &str) -> Vec<String> {
    let mut names = Vec::new();
    for (at, _) in source.match_indices("crate::") {
        let rest = &source[at + "crate::".len()..];
        if let Some(group) = rest.strip_prefix('{') {
            let group = &group[..group.find('}').unwrap_or(group.len())];
            names.extend(group.split(',').map(|item| item.trim().split("::").next().unwrap_or("").to_owned()));
        } else {
            names.push(rest.chars().take_while(|c| c.is_alphanumeric() || *c == '_').collect());
        }
    }
    names
}

#[test]
fn no_module_imports_a_layer_above_its_own() {
    let root = Path::new(env!("CARGO_MANIFEST_DIR"));
    let mut violations = Vec::new();
    for (place, forbidden, why) in RULES {
        for file in rust_files(&root.join(place)) {
            let source = std::fs::read_to_string(&file).expect("source file");
            for name in imported(&source).iter().filter(|n| forbidden.contains(&n.as_str())) {
                violations
                    .push(format!("{} imports crate::{name} ({why})", file.strip_prefix(root).unwrap().display()));
            }
        }
    }
    assert!(violations.is_empty(), "imports that run up a layer:\n{}", violations.join("\n"));
}

#[test]
fn the_import_reader_sees_every_form() {
    let names = imported("use crate::store::Db;\nuse crate::{config, commands::parse};\nlet x = crate::jobs::run();");
    assert_eq!(names, ["store", "config", "commands", "jobs"]);
}
