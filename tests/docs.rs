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

/// The modules of a source tree (`a/b.rs` is `["a", "b"]`), each with the
/// modules its code names through `crate::` (in `use` lines, brace groups
/// included, and in paths written inline), tests left out.
fn module_graph(src: &Path) -> Vec<(Vec<String>, BTreeSet<Vec<String>>)> {
    fn files(dir: &Path, out: &mut Vec<PathBuf>) {
        for entry in std::fs::read_dir(dir).unwrap() {
            let path = entry.unwrap().path();
            if path.is_dir() {
                files(&path, out);
            } else if path.extension().is_some_and(|e| e == "rs") {
                out.push(path);
            }
        }
    }
    /// Every path after `crate::` in `code`, brace groups expanded.
    fn paths(code: &str) -> Vec<Vec<String>> {
        /// The segments of one path as written (`a::b as c`: a, b).
        fn segments(item: &str) -> impl Iterator<Item = String> + '_ {
            item.split(" as ")
                .next()
                .unwrap_or("")
                .split("::")
                .map(str::trim)
                .filter(|p| !p.is_empty() && *p != "self" && *p != "*")
                .map(str::to_string)
        }
        /// The items of a brace group, each after `base`, from `chars[*i]`
        /// (just after the `{`) to its `}`.
        fn group(base: &[String], chars: &[char], i: &mut usize, out: &mut Vec<Vec<String>>) {
            let mut item = String::new();
            while let Some(&c) = chars.get(*i) {
                *i += 1;
                match c {
                    '{' => {
                        let inner: Vec<String> =
                            base.iter().cloned().chain(segments(&item)).collect();
                        group(&inner, chars, i, out);
                        item.clear();
                    }
                    ',' | '}' => {
                        if !item.trim().is_empty() {
                            out.push(base.iter().cloned().chain(segments(&item)).collect());
                        }
                        item.clear();
                        if c == '}' {
                            return;
                        }
                    }
                    _ => item.push(c),
                }
            }
        }
        let mut out = Vec::new();
        for (at, _) in code.match_indices("crate::") {
            let rest = &code[at + "crate::".len()..];
            let end = rest
                .find(|c: char| !(c.is_alphanumeric() || c == '_' || c == ':'))
                .unwrap_or(rest.len());
            let base: Vec<String> = rest[..end]
                .split("::")
                .filter(|p| !p.is_empty())
                .map(str::to_string)
                .collect();
            if rest[end..].starts_with('{') {
                let chars: Vec<char> = rest[end + 1..].chars().take(2000).collect();
                group(&base, &chars, &mut 0, &mut out);
            } else {
                out.push(base);
            }
        }
        out
    }
    let mut all = Vec::new();
    files(src, &mut all);
    let module = |p: &Path| -> Vec<String> {
        let rel = p.strip_prefix(src).unwrap().with_extension("");
        rel.iter()
            .map(|c| c.to_string_lossy().into_owned())
            .collect()
    };
    let modules: BTreeSet<Vec<String>> = all
        .iter()
        .map(|p| module(p))
        .filter(|m| m != &["lib"] && m != &["main"])
        .collect();
    let mut graph = Vec::new();
    for path in &all {
        let from = module(path);
        if !modules.contains(&from) {
            continue;
        }
        let text = std::fs::read_to_string(path).unwrap();
        let code: String = text
            .split("#[cfg(test)]\nmod tests")
            .next()
            .unwrap()
            .lines()
            .map(|l| l.split("//").next().unwrap())
            .collect::<Vec<_>>()
            .join("\n");
        // `super::x` and `self::x` as the paths from the crate's root they
        // are (`super::super::` first).
        let above = |n: usize| -> String {
            let kept = &from[..from.len().saturating_sub(n)];
            ["crate"]
                .into_iter()
                .chain(kept.iter().map(String::as_str))
                .map(|p| format!("{p}::"))
                .collect()
        };
        let code = code
            .replace("super::super::", &above(2))
            .replace("super::", &above(1))
            .replace("self::", &above(0));
        let mut to = BTreeSet::new();
        for p in paths(&code) {
            // The deepest module the path names. A module's parents hold
            // it (`use super::*` is no arrow back).
            let Some(m) = (1..=p.len())
                .rev()
                .map(|n| p[..n].to_vec())
                .find(|m| modules.contains(m))
            else {
                continue;
            };
            if !from.starts_with(&m) {
                to.insert(m);
            }
        }
        // A module that names one of its own parts (`use update::x`,
        // `update::f()`) depends on it; declaring it (`mod update;`) alone
        // does not.
        for child in modules
            .iter()
            .filter(|c| c.len() == from.len() + 1 && c.starts_with(&from))
        {
            let name = format!("{}::", child[from.len()]);
            let named = code.match_indices(&name).any(|(at, _)| {
                !code[..at]
                    .chars()
                    .next_back()
                    .is_some_and(|c| c.is_alphanumeric() || c == '_' || c == ':')
            });
            if named {
                to.insert(child.clone());
            }
        }
        graph.push((from, to));
    }
    graph
}

/// A cycle in the graph, as the modules along it, if there is one.
fn a_cycle(graph: &[(Vec<String>, BTreeSet<Vec<String>>)]) -> Option<Vec<String>> {
    fn visit<'a>(
        m: &'a Vec<String>,
        graph: &'a [(Vec<String>, BTreeSet<Vec<String>>)],
        path: &mut Vec<&'a Vec<String>>,
        done: &mut BTreeSet<&'a Vec<String>>,
    ) -> Option<Vec<String>> {
        if let Some(at) = path.iter().position(|p| *p == m) {
            return Some(path[at..].iter().chain([&m]).map(|p| p.join("/")).collect());
        }
        if !done.insert(m) {
            return None;
        }
        path.push(m);
        let edges = graph.iter().find(|(f, _)| f == m).map(|(_, t)| t);
        for next in edges.into_iter().flatten() {
            if let Some(cycle) = visit(next, graph, path, done) {
                return Some(cycle);
            }
        }
        path.pop();
        None
    }
    let mut done = BTreeSet::new();
    graph
        .iter()
        .find_map(|(m, _)| visit(m, graph, &mut Vec::new(), &mut done))
}

/// lib.rs's picture says one message flows one way; the code's imports must
/// too (issue 18): no module reaches, through others, back to itself.
#[test]
fn the_modules_import_one_way() {
    let graph = module_graph(&root().join("gateway/src"));
    assert!(graph.len() > 50, "{} modules", graph.len());
    let edges: usize = graph.iter().map(|(_, t)| t.len()).sum();
    assert!(edges > 100, "{edges} imports");
    if let Some(cycle) = a_cycle(&graph) {
        panic!("an import circle: {}", cycle.join(" -> "));
    }
}

/// The check finds a circle where there is one, through a brace group and
/// an inline path, and not between a module and its own parts.
#[test]
fn an_import_circle_is_found() {
    let dir = tempfile::tempdir().unwrap();
    let src = dir.path();
    std::fs::create_dir_all(src.join("a")).unwrap();
    std::fs::write(src.join("lib.rs"), "pub mod a; pub mod b; pub mod c;").unwrap();
    std::fs::write(src.join("a.rs"), "mod inner;\nuse crate::a::inner::X;\n").unwrap();
    std::fs::write(src.join("a/inner.rs"), "use crate::{b::{self, Y}, c};\n").unwrap();
    std::fs::write(src.join("b.rs"), "use crate::a::Z; // crate::c::W\n").unwrap();
    std::fs::write(src.join("c.rs"), "fn f() { crate::b::g() }\n").unwrap();
    let graph = module_graph(src);
    let cycle = a_cycle(&graph).expect("a -> a/inner -> b -> a is a circle");
    assert!(cycle.contains(&"b".to_string()), "{cycle:?}");
    // Without b's import of a, none is left (a/inner -> c -> b is a line).
    std::fs::write(src.join("b.rs"), "// use crate::a::Z;\n").unwrap();
    assert_eq!(a_cycle(&module_graph(src)), None);
    // A part that uses its parent is no circle; a parent naming its part
    // by a relative path is an arrow, as in the circle issue 18 measured
    // (intake -> intake/update -> keywatch -> intake).
    std::fs::write(src.join("a.rs"), "mod inner;\nuse inner::X;\n").unwrap();
    std::fs::write(src.join("a/inner.rs"), "use super::*;\nuse crate::b::Y;\n").unwrap();
    assert_eq!(a_cycle(&module_graph(src)), None);
    std::fs::write(src.join("b.rs"), "fn f() { crate::a::g() }\n").unwrap();
    let cycle = a_cycle(&module_graph(src)).expect("a -> a/inner -> b -> a");
    assert_eq!(cycle.len(), 4, "{cycle:?}");
    // Two parts of one module that use each other through `super::`.
    std::fs::write(src.join("b.rs"), "").unwrap();
    std::fs::write(src.join("a/other.rs"), "use super::inner::X;\n").unwrap();
    std::fs::write(src.join("a/inner.rs"), "use super::{other::Y, Z};\n").unwrap();
    let cycle = a_cycle(&module_graph(src)).expect("a/inner -> a/other -> a/inner");
    assert_eq!(cycle.len(), 3, "{cycle:?}");
}
