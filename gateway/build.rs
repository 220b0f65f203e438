//! Embeds the mail templates of `../templates/<language>/<name>.hbs` in the
//! binary, so a deployment always has them; `templates` in gateway.toml may
//! name a folder whose files override them.

use std::fmt::Write as _;
use std::path::Path;

fn main() {
    let root = Path::new(env!("CARGO_MANIFEST_DIR")).join("../templates");
    println!("cargo:rerun-if-changed={}", root.display());
    let mut entries = Vec::new();
    // A binary without its templates could write no mail: no build.
    let langs = std::fs::read_dir(&root)
        .unwrap_or_else(|e| panic!("the templates folder {}: {e}", root.display()));
    for lang in langs.flatten().filter(|e| e.path().is_dir()) {
        println!("cargo:rerun-if-changed={}", lang.path().display());
        for file in std::fs::read_dir(lang.path())
            .expect("readable templates folder")
            .flatten()
        {
            let path = file.path();
            if path.extension().is_some_and(|e| e == "hbs") {
                let name = path
                    .file_stem()
                    .expect("file name")
                    .to_string_lossy()
                    .into_owned();
                let lang = lang.file_name().to_string_lossy().into_owned();
                entries.push((lang, name, path.canonicalize().expect("template path")));
            }
        }
    }
    assert!(
        entries.iter().any(|(lang, ..)| lang == "en"),
        "no English template under {}",
        root.display()
    );
    entries.sort();
    let mut out = String::from("/// (language, name, text) of every shipped template.\npub static EMBEDDED: &[(&str, &str, &str)] = &[\n");
    for (lang, name, path) in entries {
        writeln!(
            out,
            "    ({lang:?}, {name:?}, include_str!({:?})),",
            path.display().to_string()
        )
        .expect("write");
    }
    out.push_str("];\n");
    let dest = Path::new(&std::env::var("OUT_DIR").expect("OUT_DIR")).join("templates.rs");
    std::fs::write(dest, out).expect("write templates.rs");
}
