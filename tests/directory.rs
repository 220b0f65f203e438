//! The directory in the store: `directory import` of the demo network's
//! file, idempotent, versioned; `directory export` in four formats, compared
//! with golden files (regenerate them with NFP_UPDATE_GOLDEN=1). Each test
//! runs on both store engines: SQLite, and (`postgres::*`) a new database on
//! a real PostgreSQL server (`common::pg`).

mod common;

use std::path::{Path, PathBuf};
use std::process::Command;

use nfp_gateway::store::Engine;

/// Each test, once per engine.
macro_rules! on_both_engines {
    ($($name:ident),* $(,)?) => {
        mod sqlite {
            $(
                #[test]
                fn $name() {
                    super::$name(super::Engine::Sqlite)
                }
            )*
        }
        mod postgres {
            $(
                #[test]
                fn $name() {
                    super::$name(super::Engine::Postgres)
                }
            )*
        }
    };
}

on_both_engines!(
    exports_match_their_golden_files,
    import_is_idempotent_shows_changes_first_and_keeps_history,
    organigrams_are_stored_by_content_and_size_limited,
);

fn gateway(config: &Path, args: &[&str]) -> String {
    let out = Command::new(env!("CARGO_BIN_EXE_nfp-gateway"))
        .arg("--config")
        .arg(config)
        .args(args)
        .output()
        .expect("nfp-gateway runs");
    assert!(
        out.status.success(),
        "{args:?} failed: {}",
        String::from_utf8_lossy(&out.stderr)
    );
    String::from_utf8(out.stdout).expect("UTF-8 output")
}

/// The demo network's configuration and directory, copied to a temporary
/// folder, with its store on `engine`; and the store's URL.
fn demo_network(engine: Engine) -> (tempfile::TempDir, PathBuf, String) {
    let dir = tempfile::tempdir().unwrap();
    let examples = Path::new(env!("CARGO_MANIFEST_DIR")).join("../examples");
    for name in ["gateway.toml", "directory.toml"] {
        std::fs::copy(examples.join(name), dir.path().join(name)).unwrap();
    }
    for sub in ["certs", "keys"] {
        copy_dir(&examples.join(sub), &dir.path().join(sub));
    }
    let config = dir.path().join("gateway.toml");
    let url = match engine {
        Engine::Sqlite => {
            // The store is created by `migrate`, as an operator does.
            gateway(&config, &["migrate"]);
            format!("sqlite://{}", dir.path().join("nfp-gateway.db").display())
        }
        Engine::Postgres => {
            let url = common::pg::database("directory");
            let text = std::fs::read_to_string(&config).unwrap();
            let sqlite = "\ndatabase = \"sqlite://nfp-gateway.db\"\n";
            assert!(
                text.contains(sqlite),
                "the demo configuration names its store"
            );
            let text = text.replacen(sqlite, &format!("\ndatabase = \"{url}\"\n"), 1);
            std::fs::write(&config, text).unwrap();
            gateway(&config, &["migrate"]);
            url
        }
    };
    (dir, config, url)
}

fn copy_dir(from: &Path, to: &Path) {
    std::fs::create_dir_all(to).unwrap();
    for e in std::fs::read_dir(from).unwrap().flatten() {
        let target = to.join(e.file_name());
        if e.path().is_dir() {
            copy_dir(&e.path(), &target);
        } else {
            std::fs::copy(e.path(), target).unwrap();
        }
    }
}

/// The generated date of the HTML page is the time of the import: masked.
fn normalize(text: &str) -> String {
    let re = regex::Regex::new(r"Generated \S+ from").unwrap();
    re.replace_all(text, "Generated (date) from").into_owned()
}

fn golden(name: &str, actual: &str) {
    let path = Path::new(env!("CARGO_MANIFEST_DIR"))
        .join("../tests/golden")
        .join(name);
    if std::env::var_os("NFP_UPDATE_GOLDEN").is_some() {
        std::fs::create_dir_all(path.parent().unwrap()).unwrap();
        std::fs::write(&path, actual).unwrap();
    }
    let expected = std::fs::read_to_string(&path)
        .unwrap_or_else(|_| panic!("{} missing: run with NFP_UPDATE_GOLDEN=1", path.display()));
    assert!(
        expected == actual,
        "{name} differs from its golden file {} (NFP_UPDATE_GOLDEN=1 regenerates it)",
        path.display()
    );
}

fn exports_match_their_golden_files(engine: Engine) {
    let (_dir, config, _) = demo_network(engine);
    gateway(&config, &["directory", "import"]);
    for (format, file) in [
        ("json", "directory.json"),
        ("csv", "directory.csv"),
        ("vcard", "directory.vcf"),
        ("html", "directory.html"),
    ] {
        let text = gateway(&config, &["directory", "export", "--format", format]);
        golden(file, &normalize(&text));
        let again = gateway(&config, &["directory", "export", "--format", format]);
        assert_eq!(text, again, "{format} export is not deterministic");
    }
}

fn import_is_idempotent_shows_changes_first_and_keeps_history(engine: Engine) {
    let (dir, config, _) = demo_network(engine);
    let first = gateway(&config, &["directory", "import"]);
    assert!(first.contains("+ AT"), "{first}");
    assert_eq!(gateway(&config, &["directory", "import"]), "no change\n");
    let before = chrono::Utc::now().to_rfc3339();
    std::thread::sleep(std::time::Duration::from_millis(20));

    let file = dir.path().join("directory.toml");
    let text = std::fs::read_to_string(&file).unwrap();
    std::fs::write(
        &file,
        text.replace("Herrengasse 7, 1010 Wien", "Minoritenplatz 9, 1010 Wien"),
    )
    .unwrap();
    let dry = gateway(&config, &["directory", "import", "--dry-run"]);
    assert!(
        dry.contains("~ AT") && dry.contains("Herrengasse 7") && dry.contains("Minoritenplatz 9"),
        "{dry}"
    );
    assert!(
        gateway(&config, &["directory", "export", "--format", "json"]).contains("Herrengasse 7"),
        "a dry run wrote"
    );
    gateway(&config, &["directory", "import"]);
    let now = gateway(&config, &["directory", "export", "--format", "json"]);
    assert!(now.contains("Minoritenplatz 9") && !now.contains("Herrengasse 7"));
    let then = gateway(
        &config,
        &["directory", "export", "--format", "json", "--at", &before],
    );
    assert!(
        then.contains("Herrengasse 7") && !then.contains("Minoritenplatz 9"),
        "the list as it was"
    );
    let history = gateway(&config, &["directory", "show", "AT"]);
    assert!(
        history.contains("v2") && history.contains(": address"),
        "{history}"
    );

    // A party leaves the network: gone from the directory, its history kept.
    let text = std::fs::read_to_string(&file).unwrap();
    let start = text[..text.find("id = \"GB\"").unwrap()]
        .rfind("[[party]]")
        .unwrap();
    let end = text[start + 1..]
        .find("\n[[party]]")
        .map_or(text.len(), |i| start + 2 + i);
    std::fs::write(&file, format!("{}{}", &text[..start], &text[end..])).unwrap();
    let removed = gateway(&config, &["directory", "import"]);
    assert!(removed.contains("- GB (removed)"), "{removed}");
    let json = gateway(&config, &["directory", "export", "--format", "json"]);
    assert!(!json.contains("\"id\": \"GB\""), "GB still listed");
    let history = gateway(&config, &["directory", "show", "GB"]);
    assert!(
        history.contains("v2") && history.contains("removed"),
        "{history}"
    );
}

fn organigrams_are_stored_by_content_and_size_limited(engine: Engine) {
    let (dir, config, url) = demo_network(engine);
    let file = dir.path().join("directory.toml");
    let text = std::fs::read_to_string(&file).unwrap();
    let with_doc = text.replacen(
        "id = \"AT\"\n",
        "id = \"AT\"\norganigram = [\"org/at.pdf\"]\n",
        1,
    );
    assert_ne!(text, with_doc, "AT's entry found");
    std::fs::write(&file, with_doc).unwrap();
    std::fs::create_dir_all(dir.path().join("org")).unwrap();
    let pdf = b"%PDF-1.4\n% organigram of the Austrian NFP\n".to_vec();
    std::fs::write(dir.path().join("org/at.pdf"), &pdf).unwrap();
    gateway(&config, &["directory", "import"]);
    let json = gateway(&config, &["directory", "export", "--format", "json"]);
    let entries: serde_json::Value = serde_json::from_str(&json).unwrap();
    let at = entries
        .as_array()
        .unwrap()
        .iter()
        .find(|e| e["id"] == "AT")
        .unwrap();
    let doc = &at["organigram"][0];
    assert_eq!(doc["name"], "at.pdf");
    assert_eq!(doc["content-type"], "application/pdf");
    assert_eq!(doc["size"], pdf.len());
    let sha = doc["sha256"].as_str().unwrap().to_string();
    let stored = tokio::runtime::Runtime::new()
        .unwrap()
        .block_on(async move {
            let store = nfp_gateway::store::Store::open(&url).await.unwrap();
            store.document(&sha).await.unwrap()
        });
    assert_eq!(stored.expect("the document is stored").1, pdf);

    // Over 10 MiB: refused, and the message names the file.
    std::fs::write(dir.path().join("org/at.pdf"), vec![0u8; (10 << 20) + 1]).unwrap();
    let out = Command::new(env!("CARGO_BIN_EXE_nfp-gateway"))
        .args(["--config", config.to_str().unwrap(), "directory", "import"])
        .output()
        .unwrap();
    assert!(!out.status.success());
    assert!(
        String::from_utf8_lossy(&out.stderr).contains("at.pdf"),
        "{}",
        String::from_utf8_lossy(&out.stderr)
    );
}
