//! The classification report (issue 14): the gateway's kinds, topics and
//! targets against the labelled corpus of `bench/classify/corpus`, on the
//! tuning split and on the held-out fifth that rules are never tuned on:
//! accuracy per language, precision and recall per kind, a confusion matrix
//! per language.
//!
//! ```sh
//! cargo bench --bench classify                      # the report, in Markdown
//! NFP_CLASSIFY_MISSES=1 cargo bench --bench classify   # and every miss of the tuning split
//! NFP_CLASSIFY_RULES=rules.toml NFP_CLASSIFY_MISSES=fr cargo bench --bench classify
//! ```
//! NFP_CLASSIFY_RULES reads other rules than the shipped ones (tuning them
//! needs no build); NFP_CLASSIFY_MISSES=fr lists one language's misses;
//! NFP_CLASSIFY_BATCH=5 reports one batch (files 401-499; or a range of
//! files, NFP_CLASSIFY_BATCH=901-1044, of some languages only with
//! NFP_CLASSIFY_BATCH=1429-1452:en,fr), to measure a new
//! batch before anything is trained or tuned on it;
//! NFP_CLASSIFY_AUDIT=FILE writes the held-out messages of a word kind that
//! were left unclassified, one file name per line, for a person to judge;
//! NFP_CLASSIFY_LANGUAGES=1 measures language detection on each tuning
//! message's first 4 to 20 words, with and without the stop words;
//! NFP_CLASSIFY_CV="10,30,100:2,3" cross-validates the model alone on the
//! tuning split for each C and each minimum of messages per feature, by
//! language; NFP_CLASSIFY_CV_MISSES=ru lists that language's messages the
//! model alone got wrong when they were held back.

#[path = "../../tests/common/corpus.rs"]
mod corpus;

use std::time::Instant;

use nfp_gateway::classify::rules::Rules;

fn main() {
    let mut messages = corpus::load();
    if let Ok(batch) = std::env::var("NFP_CLASSIFY_BATCH") {
        // A batch's number (5: files 401-499), or its files' range (901-1044),
        // then perhaps the languages (":en,fr").
        let (batch, languages) = match batch.split_once(':') {
            Some((b, l)) => (
                b.to_string(),
                Some(l.split(',').map(str::to_string).collect::<Vec<_>>()),
            ),
            None => (batch, None),
        };
        let (first, last) = match batch.split_once('-') {
            Some((a, b)) => (a.parse().ok(), b.parse().ok()),
            None => {
                let n: Option<usize> = batch.parse().ok();
                (n.map(|n| (n - 1) * 100), n.map(|n| n * 100 - 1))
            }
        };
        let (Some(first), Some(last)) = (first, last) else {
            panic!("NFP_CLASSIFY_BATCH is a batch number or FIRST-LAST")
        };
        messages.retain(|m| (first..=last).contains(&m.id[3..].parse::<usize>().unwrap()));
        if let Some(languages) = languages {
            messages.retain(|m| languages.iter().any(|l| m.id.starts_with(&format!("{l}/"))));
        }
    }
    let rules = match std::env::var_os("NFP_CLASSIFY_RULES") {
        Some(path) => Rules::load(std::path::Path::new(&path)).unwrap_or_else(|e| {
            eprintln!("{e:#}");
            std::process::exit(2)
        }),
        None => Rules::builtin(),
    };
    let dir = corpus::directory();
    let tuning: Vec<&corpus::Message> = messages.iter().filter(|m| !m.held_out).collect();
    let held_out: Vec<&corpus::Message> = messages.iter().filter(|m| m.held_out).collect();
    let started = Instant::now();
    let t = corpus::score(&tuning, &rules, &dir);
    let h = corpus::score(&held_out, &rules, &dir);
    let elapsed = started.elapsed();
    println!("## Classification of the labelled corpus\n");
    println!(
        "{} messages ({} tuning, {} held out); {:.0} µs per message (debug or release as built).\n",
        messages.len(),
        tuning.len(),
        held_out.len(),
        elapsed.as_secs_f64() * 1e6 / messages.len() as f64
    );
    println!("{}", corpus::report("Tuning split", &t));
    println!("{}", corpus::report("Held-out split", &h));
    if let Ok(which) = std::env::var("NFP_CLASSIFY_MISSES") {
        println!("### Misses of the tuning split\n");
        for (id, what) in t
            .misses
            .iter()
            .filter(|(id, _)| which.len() != 2 || id.starts_with(&format!("{which}/")))
        {
            println!("- {id}: {what}");
        }
    }
    if std::env::var_os("NFP_CLASSIFY_LANGUAGES").is_some() {
        languages(&tuning, &rules);
    }
    if let Ok(grid) = std::env::var("NFP_CLASSIFY_CV") {
        cross_validate(&tuning, &rules, &grid);
    }
    if let Ok(grid) = std::env::var("NFP_CLASSIFY_CV_DECIDE") {
        cross_validate_decision(&tuning, &rules, &grid);
    }
    // The held-out messages of a word kind left unclassified, by file, for a
    // person to judge whether they would hesitate too: written to a file,
    // never printed, so that nobody tuning reads them by the way.
    if let Some(path) = std::env::var_os("NFP_CLASSIFY_AUDIT") {
        let list: String = h
            .left_unclassified
            .iter()
            .map(|id| format!("bench/classify/corpus/{id}.txt\n"))
            .collect();
        std::fs::write(&path, list).expect("NFP_CLASSIFY_AUDIT is writable");
    }
    if std::env::var_os("NFP_CLASSIFY_LIST_TUNING").is_some() {
        for m in &tuning {
            println!("tuning: bench/classify/corpus/{}.txt", m.id);
        }
    }
}

/// The model's examples: each message's features and its label.
fn examples(
    tuning: &[&corpus::Message],
    rules: &Rules,
) -> Vec<nfp_gateway::classify::model::Example> {
    tuning
        .iter()
        .map(|m| {
            let f = nfp_gateway::classify::model_features(
                m.subject.as_deref(),
                &m.text,
                rules,
                m.language,
            );
            (f, m.kind)
        })
        .collect()
}

/// The model alone, cross-validated on the tuning split for each setting.
fn cross_validate(tuning: &[&corpus::Message], rules: &Rules, grid: &str) {
    use nfp_gateway::classify::model;
    let (cs, mins) = grid.split_once(':').expect("NFP_CLASSIFY_CV=C,C:MIN,MIN");
    let examples = examples(tuning, rules);
    println!(
        "### Cross-validation of the model alone ({} messages)\n",
        examples.len()
    );
    println!(
        "| C | min. messages | features | accuracy | threshold | right from it | wrong kinds |"
    );
    println!("|---:|---:|---:|---:|---:|---:|---:|");
    for c in cs.split(',') {
        for min in mins.split(',') {
            let t = model::Training {
                c: c.parse().unwrap(),
                min_documents: min.parse().unwrap(),
                ..model::Training::default()
            };
            let (m, v) = model::train(&examples, &t);
            let by_language: Vec<String> = nfp_gateway::classify::Language::ALL
                .iter()
                .map(|l| {
                    let of: Vec<bool> = tuning
                        .iter()
                        .zip(&v.right)
                        .filter(|(m, _)| m.language == *l)
                        .map(|(_, r)| *r)
                        .collect();
                    let right = of.iter().filter(|r| **r).count();
                    format!(
                        "{} {:.1}",
                        l.code(),
                        100.0 * right as f64 / of.len().max(1) as f64
                    )
                })
                .collect();
            if let Ok(lang) = std::env::var("NFP_CLASSIFY_CV_MISSES") {
                for (m, _) in tuning
                    .iter()
                    .zip(&v.right)
                    .filter(|(m, r)| !**r && m.language.code() == lang)
                {
                    eprintln!("cv miss {} ({:?})", m.id, m.kind);
                }
            }
            println!(
                "| {c} | {min} | {} | {:.1} % ({}) | {:.2} | {:.1} % | {:.1} % |",
                m.len(),
                100.0 * v.accuracy,
                by_language.join(", "),
                m.threshold,
                100.0 * v.accuracy_at_threshold,
                100.0 * v.wrong_at_threshold
            );
        }
    }
}

/// Language detection on the first words of each tuning message (a short
/// message's worth), by whatlang alone and with the stop words' say when
/// its guess is unreliable: right, wrong, and too short to tell (fewer
/// than four words, or whatlang has no guess; the sender's language then).
fn languages(tuning: &[&corpus::Message], rules: &Rules) {
    println!(
        "### Language detection on the first words ({} tuning messages)\n",
        tuning.len()
    );
    println!("| first words | whatlang alone: right | wrong | with stop words: right | wrong | too short |");
    println!("|---:|---:|---:|---:|---:|---:|");
    for k in [4, 6, 8, 12, 20, usize::MAX] {
        let mut counts = [0usize; 5];
        for m in tuning {
            let text = m
                .text
                .split_whitespace()
                .take(k)
                .collect::<Vec<_>>()
                .join(" ");
            let alone = nfp_gateway::classify::language_of(&text, rules, false);
            let both = nfp_gateway::classify::language_of(&text, rules, true);
            match (alone, both) {
                (Some(a), Some(b)) => {
                    counts[usize::from(a != m.language)] += 1;
                    counts[2 + usize::from(b != m.language)] += 1;
                }
                _ => counts[4] += 1,
            }
        }
        let n = (counts[0] + counts[1]).max(1) as f64;
        let pct = |c: usize| format!("{c} ({:.1} %)", 100.0 * c as f64 / n);
        let words = if k == usize::MAX {
            "all".to_string()
        } else {
            k.to_string()
        };
        println!(
            "| {words} | {} | {} | {} | {} | {} |",
            pct(counts[0]),
            counts[1],
            pct(counts[2]),
            counts[3],
            counts[4]
        );
    }
    println!();
}

/// The whole decision, cross-validated on the tuning split: each fifth of
/// the messages is classified by the rules and by a model trained on the
/// other four fifths (the shipped threshold), for each
/// `clear-lead:overrule[:agree]` setting of the grid.
fn cross_validate_decision(tuning: &[&corpus::Message], rules: &Rules, grid: &str) {
    use nfp_gateway::classify::{model, Kind};
    let examples = examples(tuning, rules);
    let t = model::Training::default();
    let folds = t.folds;
    let models = model::fold_models(&examples, &t, model::Model::builtin().threshold);
    let dir = corpus::directory();
    println!(
        "### Cross-validation of the whole decision ({} messages, {folds} folds)\n",
        tuning.len()
    );
    println!(
        "| clear-lead | overrule | agree | clear-lead-none | overrule-none | kind right | wrong kinds | word kinds left unclassified |"
    );
    println!("|---:|---:|---:|---:|---:|---:|---:|---:|");
    for setting in grid.split(',') {
        let mut values = setting.split(':');
        let mut r = rules.clone();
        let e = &mut r.evidence;
        for (value, name) in [
            (&mut e.clear_lead, "clear-lead"),
            (&mut e.overrule, "overrule"),
            (&mut e.agree, "agree"),
            (&mut e.clear_lead_none, "clear-lead-none"),
            (&mut e.overrule_none, "overrule-none"),
        ] {
            if let Some(v) = values.next() {
                *value = v.parse().unwrap_or_else(|_| panic!("{setting}: {name}"));
            }
        }
        let (lead, overrule, agree) = (e.clear_lead, e.overrule, e.agree);
        let (lead_none, overrule_none) = (e.clear_lead_none, e.overrule_none);
        let (mut right, mut wrong, mut left) =
            (0, Vec::<String>::new(), Vec::<(String, String)>::new());
        for (i, m) in tuning.iter().enumerate() {
            let c = corpus::classify_one_with(m, &r, &models[i % folds], &dir);
            if c.kind == m.kind {
                right += 1;
            } else if c.kind == Kind::Unclassified {
                left.push((m.id.clone(), c.why.clone()));
            } else {
                wrong.push(format!(
                    "{} ({} read as {}): {}",
                    m.id,
                    m.kind.code(),
                    c.kind.code(),
                    c.why
                ));
            }
        }
        let n = tuning.len() as f64;
        println!(
            "| {lead} | {overrule} | {agree} | {lead_none} | {overrule_none} | {:.1} % | {:.1} % | {} ({:.1} %) |",
            100.0 * right as f64 / n,
            100.0 * wrong.len() as f64 / n,
            left.len(),
            100.0 * left.len() as f64 / n
        );
        if std::env::var_os("NFP_CLASSIFY_CV_DECIDE_LIST").is_some() {
            for (id, why) in &left {
                eprintln!("cv unclassified {setting} {id}: {why}");
            }
            for w in &wrong {
                eprintln!("cv wrong {setting} {w}");
            }
        }
    }
}
