//! The documentation matches the code (issue 17). Nothing here is a hand
//! list: the configuration keys are the ones the parser itself names when it
//! refuses an unknown key, the commands are clap's definitions, the
//! templates the ones built into the binary, the environment variables the
//! ones the code and scripts read.

use std::collections::BTreeSet;
use std::path::{Path, PathBuf};

use clap::CommandFactory;

fn root() -> PathBuf {
    Path::new(env!("CARGO_MANIFEST_DIR")).join("..")
}

fn read(path: &str) -> String {
    std::fs::read_to_string(root().join(path)).unwrap_or_else(|e| panic!("{path}: {e}"))
}

/// The words between backticks: `a`, `b c`.
fn backticked(text: &str) -> impl Iterator<Item = &str> {
    text.split('`').skip(1).step_by(2)
}

/// The smallest configuration the parser takes, with `extra` in it.
fn parse(extra: &str) -> anyhow::Result<nfp_gateway::config::Config> {
    let text = format!(
        "role = \"secretariat\"\naddress = \"gateway@nfp-network.example\"\n\
         secret-key = \"k.asc\"\ndirectory = \"d.toml\"\n{extra}"
    );
    nfp_gateway::config::Config::parse(&text, Path::new("/etc/nfp-gateway/gateway.toml"))
}

/// The keys a section accepts, as the parser lists them when it refuses an
/// unknown one ("unknown field `x`, expected one of `a`, `b`"). `section`
/// None is the top level; `body` is what the section needs besides.
fn accepted(section: Option<&str>, body: &str) -> BTreeSet<String> {
    let probe = "zz-not-a-key = 1";
    let extra = match section {
        None => format!("{probe}\n"),
        Some(s) => format!("[{s}]\n{body}{probe}\n"),
    };
    let err = format!(
        "{:#}",
        parse(&extra).expect_err("an unknown key is refused")
    );
    let expected = err
        .split_once("expected")
        .unwrap_or_else(|| panic!("{section:?}: the parser does not list its keys: {err}"))
        .1;
    let keys: BTreeSet<String> = backticked(expected).map(str::to_string).collect();
    assert!(!keys.is_empty(), "{section:?}: {err}");
    keys
}

/// Every key of every section: (section, key), the top level as "".
fn config_keys() -> Vec<(String, String)> {
    let top = accepted(None, "");
    let mut all: Vec<(String, String)> = Vec::new();
    // A top-level key is a section when a table is what it takes.
    let mut sections = Vec::new();
    for key in &top {
        let needs_table = parse(&format!("{key} = 1\n")).is_err_and(|e| {
            let e = format!("{e:#}");
            e.contains("expected struct") || e.contains("expected a map")
        });
        match needs_table {
            true => sections.push(key.clone()),
            false => all.push((String::new(), key.clone())),
        }
    }
    // What a section needs before an unknown key is the error.
    let server = "host = \"localhost\"\nport = 1\nsecurity = \"plaintext\"\nusername = \"u\"\n";
    for section in sections {
        let keys = match section.as_str() {
            // A map of periods by kind: its own parser names what it takes.
            "retention" => retention_keys(),
            "imap" | "smtp" => accepted(Some(&section), server),
            _ => accepted(Some(&section), ""),
        };
        all.extend(keys.into_iter().map(|k| (section.clone(), k)));
    }
    all
}

/// [retention] takes `content`, `quarantined` and kinds: as its error says.
fn retention_keys() -> BTreeSet<String> {
    let err = format!(
        "{:#}",
        parse("[retention]\nzz-not-a-key = \"1y\"\n").expect_err("refused")
    );
    let mut keys: BTreeSet<String> = backticked(&err).map(str::to_string).collect();
    let (_, kinds) = err.split_once("a kind (").expect("the kinds are listed");
    for k in kinds.trim_end_matches(')').split(", ") {
        keys.insert(k.to_string());
    }
    keys.remove("zz-not-a-key");
    keys
}

/// The section of the README's "Configuration" table.
fn readme_configuration_table() -> String {
    let readme = read("README.md");
    let start = readme
        .find("## Configuration\n")
        .expect("README: ## Configuration");
    let rest = &readme[start..];
    let end = rest[3..].find("\n## ").map_or(rest.len(), |e| e + 3);
    rest[..end].to_string()
}

#[test]
fn every_configuration_key_is_in_the_example_and_the_readme() {
    let keys = config_keys();
    assert!(keys.len() > 40, "{keys:?}");
    let example = read("examples/gateway.toml");
    let table = readme_configuration_table();
    let mut missing = Vec::new();
    for (section, key) in &keys {
        // In the example: `key =` on a line of its own, commented or not,
        // after its section's header (commented or not).
        let after = match section.as_str() {
            "" => Some(0),
            s => example
                .find(&format!("[{s}]\n"))
                .or_else(|| example.find(&format!("[{s}]"))),
        };
        let in_example = after.is_some_and(|at| {
            example[at..].lines().any(|l| {
                let l = l.trim_start_matches(['#', ' ']);
                l.starts_with(&format!("{key} =")) || l.starts_with(&format!("{key}="))
            })
        });
        if !in_example {
            missing.push(format!("examples/gateway.toml: [{section}] {key}"));
        }
        // In the README's table: a row that names the section (if any) and
        // the key in backticks.
        let in_readme = table.lines().any(|l| {
            l.starts_with('|')
                && l.contains(&format!("`{key}`"))
                && (section.is_empty() && !l.starts_with("| `[")
                    || l.starts_with(&format!("| `[{section}]`")))
        });
        if !in_readme {
            missing.push(format!(
                "README.md's configuration table: [{section}] {key}"
            ));
        }
    }
    assert!(
        missing.is_empty(),
        "undocumented keys:\n{}",
        missing.join("\n")
    );
}

/// Every command and subcommand is in the README's table of commands, and
/// the table names no command that does not exist.
#[test]
fn every_command_is_in_the_readme() {
    let cli = nfp_gateway::cli::Cli::command();
    let mut paths = Vec::new();
    // clap's own `help` subcommands are no commands of the gateway.
    let shown = |c: &&clap::Command| !c.is_hide_set() && c.get_name() != "help";
    for c in cli.get_subcommands().filter(shown) {
        let subs: Vec<_> = c.get_subcommands().filter(shown).collect();
        if subs.is_empty() {
            paths.push(c.get_name().to_string());
        }
        for s in subs {
            paths.push(format!("{} {}", c.get_name(), s.get_name()));
        }
    }
    assert!(paths.len() > 30, "{paths:?}");
    let readme = read("README.md");
    let start = readme
        .find("| command | what it does |")
        .expect("README: the table of commands");
    let table: Vec<&str> = readme[start..]
        .lines()
        .skip(2)
        .take_while(|l| l.starts_with('|'))
        .collect();
    let first_cells: Vec<&str> = table
        .iter()
        .map(|l| l.split(" | ").next().unwrap())
        .collect();
    let named: Vec<String> = first_cells
        .iter()
        .flat_map(|c| backticked(c))
        .map(|c| {
            c.split_whitespace()
                .take_while(|w| w.chars().all(|ch| ch.is_ascii_lowercase()))
                .collect::<Vec<_>>()
                .join(" ")
        })
        .collect();
    let missing: Vec<&String> = paths.iter().filter(|p| !named.contains(p)).collect();
    assert!(
        missing.is_empty(),
        "commands missing from README's table: {missing:?}"
    );
    let unknown: Vec<&String> = named.iter().filter(|n| !paths.contains(n)).collect();
    assert!(
        unknown.is_empty(),
        "README's table names commands that do not exist: {unknown:?}"
    );
}

/// Every template the binary has built in is named in the example
/// configuration's list and exists in every language.
#[test]
fn every_template_is_listed() {
    let example = read("examples/gateway.toml");
    let start = example
        .find("# body. Names:")
        .expect("the example's list of templates");
    let list: String = example[start..]
        .lines()
        .take_while(|l| l.starts_with('#') && !l.contains("templates ="))
        .collect::<Vec<_>>()
        .join(" ");
    let missing: Vec<&&str> = nfp_gateway::outbound::render::NAMES
        .iter()
        .filter(|n| !list.contains(**n))
        .collect();
    assert!(
        missing.is_empty(),
        "templates missing from examples/gateway.toml: {missing:?}"
    );
    for lang in nfp_gateway::classify::Language::ALL {
        for name in nfp_gateway::outbound::render::NAMES {
            let path = root().join(format!("templates/{}/{name}.hbs", lang.code()));
            assert!(path.exists(), "{} missing", path.display());
        }
    }
}

/// Every NFP_GATEWAY_* variable that the code or a script reads is in the
/// README.
#[test]
fn every_environment_variable_is_documented() {
    let readme = read("README.md");
    let mut found = BTreeSet::new();
    let mut stack = vec![root().join("gateway/src"), root().join("scripts")];
    while let Some(p) = stack.pop() {
        if p.is_dir() {
            for e in std::fs::read_dir(&p).unwrap() {
                stack.push(e.unwrap().path());
            }
            continue;
        }
        let Ok(text) = std::fs::read_to_string(&p) else {
            continue;
        };
        let mut rest = text.as_str();
        while let Some(at) = rest.find("NFP_GATEWAY_") {
            let name: String = rest[at..]
                .chars()
                .take_while(|c| c.is_ascii_uppercase() || *c == '_')
                .collect();
            found.insert(name.trim_end_matches('_').to_string());
            rest = &rest[at + 12..];
        }
    }
    assert!(found.contains("NFP_GATEWAY_LOG"), "{found:?}");
    let missing: Vec<&String> = found
        .iter()
        .filter(|v| !readme.contains(v.as_str()))
        .collect();
    assert!(
        missing.is_empty(),
        "environment variables missing from README.md: {missing:?}"
    );
}

/// Every relative link of the README points into the repository, at a file
/// that exists.
#[test]
fn the_readme_links_inside_the_repository() {
    let readme = read("README.md");
    let mut bad = Vec::new();
    for part in readme.split("](").skip(1) {
        let target = part.split(')').next().unwrap();
        if target.starts_with("http") || target.starts_with('#') || target.starts_with("mailto:") {
            continue;
        }
        let file = target.split('#').next().unwrap();
        let path = root().join(file);
        let inside = path
            .canonicalize()
            .is_ok_and(|p| p.starts_with(root().canonicalize().unwrap()));
        if !inside {
            bad.push(target.to_string());
        }
    }
    assert!(
        bad.is_empty(),
        "README links outside the repository or to nothing: {bad:?}"
    );
}

/// Every argument of every command says what it is: the man pages and
/// `--help` are made from these words.
#[test]
fn every_argument_is_described() {
    fn walk(cmd: &clap::Command, path: &str, bare: &mut Vec<String>) {
        for arg in cmd.get_arguments() {
            let id = arg.get_id().as_str();
            if matches!(id, "help" | "version") || arg.is_hide_set() {
                continue;
            }
            if arg.get_help().is_none() && arg.get_long_help().is_none() {
                bare.push(format!("{path} {id}"));
            }
        }
        for sub in cmd.get_subcommands().filter(|s| !s.is_hide_set()) {
            walk(sub, &format!("{path} {}", sub.get_name()), bare);
        }
    }
    let mut bare = Vec::new();
    walk(&nfp_gateway::cli::Cli::command(), "nfp-gateway", &mut bare);
    assert!(bare.is_empty(), "arguments without a description: {bare:?}");
}
