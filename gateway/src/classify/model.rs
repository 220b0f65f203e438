//! A linear model of what a message is, learnt from the labelled corpus:
//! multinomial logistic regression over the stems of the sender's own new
//! text and the pairs of stems that follow each other in a sentence.
//!
//! Hand-written phrases miss what their writers did not foresee (another
//! verb, another person, a word inserted); a model trained on many writers
//! reads the ordinary variation. It never decides alone: [`super::classify`]
//! takes its kind when it is sure enough (its probability at least the
//! threshold chosen by cross-validation when it was trained), or when the
//! rules' phrases say the same; otherwise the message is `unclassified` and
//! the Secretariat triages it.
//!
//! The weights are data (`rules/model.tsv`), trained by [`train`] from the
//! corpus' tuning split, never from its held-out split; `tests/classify.rs`
//! retrains and requires the very same file, so it cannot drift from the
//! corpus and the code that reads it.

use std::collections::BTreeMap;
use std::fmt::Write as _;
use std::sync::OnceLock;

use anyhow::{anyhow, bail, Result};
use foldhash::{HashMap, HashMapExt as _};
use rust_stemmers::Stemmer;

use super::rules::fold_word;
use super::text::{Reading, Role};
use super::{Kind, Language};

/// The kinds the model tells apart, in the columns of its file.
pub const CLASSES: [Kind; 6] = [
    Kind::AssistanceRequest,
    Kind::BestPractice,
    Kind::ContactUpdate,
    Kind::InformationRequest,
    Kind::InformationReply,
    Kind::Unclassified,
];
const K: usize = CLASSES.len();

/// The shipped model.
pub const DEFAULT_MODEL: &str = include_str!("../../../rules/model.tsv");

/// The features of a text: each folded stem of its new words (digits and
/// reference numbers skipped; the subject's only `with_subject`), and each
/// pair of stems that follow each other in a sentence ("request assist").
/// Sorted, each once.
pub fn features(reading: &Reading<'_>, language: Language, with_subject: bool) -> Vec<String> {
    let mut out = Vec::with_capacity(reading.words.len() * 2);
    each_feature(reading, language, with_subject, None, |f| {
        out.push(f.to_string())
    });
    out.sort_unstable();
    out.dedup();
    out
}

/// Calls `f` with each feature of [`features`], in text order, repeats
/// included, without allocating one string per feature.
fn each_feature(
    reading: &Reading<'_>,
    language: Language,
    with_subject: bool,
    vocabulary: Option<&HashMap<String, usize>>,
    mut f: impl FnMut(&str),
) {
    let stemmer = Stemmer::create(super::rules::algorithm(language));
    let mut previous: Option<(usize, String)> = None;
    let mut pair = String::new();
    for w in &reading.words {
        let subject = reading.lines[w.line].role == Role::Subject;
        // A reference number (BSM-2026-000123) is the rules' evidence, read
        // with its context (an acknowledgement of receipt cites one too).
        if w.raw.chars().all(|c| c.is_numeric())
            || w.raw.eq_ignore_ascii_case("bsm")
            || super::text::is_reference(w.raw)
            || (subject && !with_subject)
        {
            previous = None;
            continue;
        }
        let stem = stem_of(&stemmer, language, w.raw, vocabulary);
        if let Some((sentence, p)) = &previous {
            if *sentence == w.sentence {
                pair.clear();
                pair.push_str(p);
                pair.push(' ');
                pair.push_str(&stem);
                f(&pair);
            }
        }
        f(&stem);
        if subject {
            pair.clear();
            pair.push('^');
            pair.push_str(&stem);
            f(&pair);
        }
        previous = Some((w.sentence, stem));
    }
}

/// The folded stem of a word as written. Snowball costs a few thousand
/// instructions a word, and the words of the model's vocabulary recur from
/// one message to the next: those are remembered (up to
/// [`REMEMBERED_STEMS`], then forgotten all at once). A word whose stem the
/// model does not know (a name, a place, a number) is never kept.
fn stem_of(
    stemmer: &Stemmer,
    language: Language,
    raw: &str,
    vocabulary: Option<&HashMap<String, usize>>,
) -> String {
    type Seen = std::sync::Mutex<HashMap<String, String>>;
    static SEEN: OnceLock<[Seen; 6]> = OnceLock::new();
    let seen = &SEEN.get_or_init(Default::default)[language as usize];
    let lock = || seen.lock().unwrap_or_else(|e| e.into_inner());
    if vocabulary.is_some() {
        if let Some(stem) = lock().get(raw) {
            return stem.clone();
        }
    }
    let stem = fold_word(&stemmer.stem(&raw.to_lowercase()));
    if vocabulary.is_some_and(|v| v.contains_key(&stem)) {
        let mut seen = lock();
        if seen.len() >= REMEMBERED_STEMS {
            seen.clear();
        }
        seen.insert(raw.to_string(), stem.clone());
    }
    stem
}

/// How many stems [`stem_of`] remembers (a few MiB at most).
const REMEMBERED_STEMS: usize = 1 << 16;

/// The model's reading of one text.
#[derive(Debug, Clone)]
pub struct Prediction {
    pub kind: Kind,
    pub probability: f32,
    /// The probability of each of [`CLASSES`].
    pub probabilities: [f32; K],
    /// The features that pushed most towards `kind`, strongest first.
    pub evidence: Vec<String>,
}

/// A trained model.
#[derive(Debug, Clone)]
pub struct Model {
    index: HashMap<String, usize>,
    names: Vec<String>,
    idf: Vec<f32>,
    weights: Vec<[f32; K]>,
    bias: [f32; K],
    /// The probability from which the model's kind is taken without the
    /// rules' agreement.
    pub threshold: f32,
    /// Where it was trained from (the file's comment lines).
    pub provenance: Vec<String>,
}

impl Model {
    pub fn builtin() -> &'static Model {
        static M: OnceLock<Model> = OnceLock::new();
        M.get_or_init(|| Model::parse(DEFAULT_MODEL).expect("the shipped model parses (tested)"))
    }

    /// Reads a model file: `#` comment lines, `@classes`, `@threshold` and
    /// `@bias` lines (a feature is letters and digits: it never begins with
    /// `#` or `@`), then one line per feature: the feature, its inverse
    /// document frequency, and its weight for each class, tab-separated.
    pub fn parse(text: &str) -> Result<Model> {
        let mut m = Model {
            index: HashMap::new(),
            names: Vec::new(),
            idf: Vec::new(),
            weights: Vec::new(),
            bias: [0.0; K],
            threshold: f32::NAN,
            provenance: Vec::new(),
        };
        let numbers = |fields: &[&str], n: usize, line: usize| -> Result<Vec<f32>> {
            if fields.len() != n {
                bail!("line {line}: {} numbers, {n} expected", fields.len());
            }
            fields
                .iter()
                .map(|f| {
                    f.parse::<f32>()
                        .ok()
                        .filter(|x| x.is_finite())
                        .ok_or_else(|| anyhow!("line {line}: {f:?} is not a number"))
                })
                .collect()
        };
        let mut classes = false;
        for (i, line) in text.lines().enumerate() {
            let n = i + 1;
            if let Some(c) = line.strip_prefix('#') {
                m.provenance.push(c.trim().to_string());
                continue;
            }
            let fields: Vec<&str> = line.split('\t').collect();
            match fields[0] {
                "" => continue,
                "@classes" => {
                    let want: Vec<&str> = CLASSES.iter().map(|k| k.code()).collect();
                    if fields[1..] != want[..] {
                        bail!("line {n}: the classes must be {}", want.join(", "));
                    }
                    classes = true;
                }
                "@threshold" => m.threshold = numbers(&fields[1..], 1, n)?[0],
                "@bias" => m.bias.copy_from_slice(&numbers(&fields[1..], K, n)?),
                name => {
                    let v = numbers(&fields[1..], K + 1, n)?;
                    if m.index.insert(name.to_string(), m.names.len()).is_some() {
                        bail!("line {n}: feature {name:?} twice");
                    }
                    m.names.push(name.to_string());
                    m.idf.push(v[0]);
                    m.weights.push(v[1..].try_into().unwrap());
                }
            }
        }
        if !classes || !(0.0..=1.0).contains(&m.threshold) {
            bail!("a model needs its classes line and a threshold between 0 and 1");
        }
        Ok(m)
    }

    /// The file [`Model::parse`] reads, weights to four decimals.
    pub fn render(&self) -> String {
        let mut out = String::new();
        for p in &self.provenance {
            let _ = writeln!(out, "# {p}");
        }
        let codes: Vec<&str> = CLASSES.iter().map(|k| k.code()).collect();
        let _ = writeln!(out, "@classes\t{}", codes.join("\t"));
        let _ = writeln!(out, "@threshold\t{:.4}", self.threshold);
        let _ = writeln!(out, "@bias\t{}", row(&self.bias));
        for (j, name) in self.names.iter().enumerate() {
            let _ = writeln!(out, "{name}\t{:.4}\t{}", self.idf[j], row(&self.weights[j]));
        }
        out
    }

    /// How many features the model knows.
    pub fn len(&self) -> usize {
        self.names.len()
    }

    pub fn is_empty(&self) -> bool {
        self.names.is_empty()
    }

    /// The model's kind for a text's [`features`], how sure it is, and the
    /// three features that pushed most towards that kind.
    pub fn predict(&self, features: &[String]) -> Prediction {
        let known: Vec<usize> = features
            .iter()
            .filter_map(|f| self.index.get(f).copied())
            .collect();
        self.predict_known(known)
    }

    /// [`Model::predict`] of a text's [`features`], read as they come.
    pub fn predict_text(
        &self,
        reading: &Reading<'_>,
        language: Language,
        with_subject: bool,
    ) -> Prediction {
        let mut known = Vec::with_capacity(reading.words.len());
        each_feature(reading, language, with_subject, Some(&self.index), |f| {
            if let Some(&j) = self.index.get(f) {
                known.push(j);
            }
        });
        known.sort_unstable();
        known.dedup();
        self.predict_known(known)
    }

    /// The prediction from the distinct indices of the features it knows.
    fn predict_known(&self, known: Vec<usize>) -> Prediction {
        let norm = known
            .iter()
            .map(|&j| self.idf[j] * self.idf[j])
            .sum::<f32>()
            .sqrt()
            .max(f32::MIN_POSITIVE);
        let mut scores = self.bias;
        for &j in &known {
            let x = self.idf[j] / norm;
            for (s, w) in scores.iter_mut().zip(&self.weights[j]) {
                *s += x * w;
            }
        }
        let p = softmax(&scores.map(f64::from));
        let best = (0..K).max_by(|&a, &b| p[a].total_cmp(&p[b])).unwrap();
        let mut pushes: Vec<(f32, usize)> = known
            .iter()
            .map(|&j| {
                let w = &self.weights[j];
                let others = (0..K).filter(|&k| k != best).map(|k| w[k]).sum::<f32>();
                (self.idf[j] / norm * (w[best] - others / (K - 1) as f32), j)
            })
            .filter(|(push, _)| *push > 0.0)
            .collect();
        pushes.sort_by(|a, b| b.0.total_cmp(&a.0).then(a.1.cmp(&b.1)));
        Prediction {
            kind: CLASSES[best],
            probability: p[best] as f32,
            probabilities: p.map(|x| x as f32),
            evidence: pushes
                .iter()
                .take(3)
                .map(|(_, j)| self.names[*j].clone())
                .collect(),
        }
    }
}

impl Prediction {
    /// Whether `kind` is the model's first or second choice.
    pub fn ranks_among_two(&self, kind: Kind) -> bool {
        let Some(i) = CLASSES.iter().position(|k| *k == kind) else {
            return false;
        };
        self.probabilities
            .iter()
            .filter(|p| **p > self.probabilities[i])
            .count()
            < 2
    }
}

fn row(v: &[f32; K]) -> String {
    let each: Vec<String> = v.iter().map(|x| format!("{x:.4}")).collect();
    each.join("\t")
}

fn softmax(s: &[f64; K]) -> [f64; K] {
    let max = s.iter().copied().fold(f64::NEG_INFINITY, f64::max);
    let e = s.map(|x| (x - max).exp());
    let sum: f64 = e.iter().sum();
    e.map(|x| x / sum)
}

/// How a model is trained.
#[derive(Debug, Clone)]
pub struct Training {
    /// Inverse strength of the L2 penalty (scikit-learn's `C`): the loss of
    /// every message counts this much against half the squared weights.
    pub c: f64,
    /// Folds of the cross-validation that chooses the threshold.
    pub folds: usize,
    /// A feature must occur in this many training messages to be kept:
    /// rarer words are names, places and one writer's habits, which
    /// neither generalise nor belong in an explanation stored in the clear.
    pub min_documents: usize,
    /// At most this share of the messages of the held-back folds may get a
    /// wrong kind (a kind other than `unclassified` that is not theirs).
    pub wrong_kinds: f64,
    /// Comment lines for the file.
    pub provenance: Vec<String>,
}

impl Default for Training {
    fn default() -> Training {
        Training {
            c: 100.0,
            folds: 5,
            min_documents: 3,
            wrong_kinds: 0.01,
            provenance: Vec::new(),
        }
    }
}

/// One training message: its [`features`] and its kind.
pub type Example = (Vec<String>, Kind);

/// What the cross-validation measured, for the training report.
#[derive(Debug, Clone)]
pub struct Validation {
    /// Accuracy of the model's kind alone, over the held-back folds.
    pub accuracy: f64,
    /// With the threshold: accuracy, and the share of wrong kinds.
    pub accuracy_at_threshold: f64,
    pub wrong_at_threshold: f64,
    /// For each example, in their order: whether the model alone got its
    /// kind when the example was held back.
    pub right: Vec<bool>,
}

/// Trains a model on `examples` and chooses its threshold by
/// cross-validation: the lowest probability at which the held-back folds'
/// wrong kinds stay within `wrong_kinds`. Deterministic: the same examples
/// in the same order give the same file.
pub fn train(examples: &[Example], t: &Training) -> (Model, Validation) {
    let mut held_back: Vec<(f32, Kind, Kind)> = Vec::with_capacity(examples.len());
    for (fold, model) in fold_models(examples, t, 0.0).iter().enumerate() {
        for (f, kind) in examples.iter().skip(fold).step_by(t.folds) {
            let p = model.predict(f);
            held_back.push((p.probability, p.kind, *kind));
        }
    }
    let n = held_back.len().max(1) as f64;
    let accuracy = held_back.iter().filter(|(_, p, k)| p == k).count() as f64 / n;
    let outcome = |threshold: f32| {
        let mut right = 0;
        let mut wrong = 0;
        for (p, predicted, kind) in &held_back {
            let decided = match *p >= threshold {
                true => *predicted,
                false => Kind::Unclassified,
            };
            if decided == *kind {
                right += 1;
            } else if decided != Kind::Unclassified {
                wrong += 1;
            }
        }
        (right as f64 / n, wrong as f64 / n)
    };
    let mut candidates: Vec<f32> = held_back.iter().map(|(p, _, _)| *p).collect();
    candidates.sort_by(f32::total_cmp);
    candidates.dedup();
    let threshold = candidates
        .iter()
        .copied()
        .find(|&c| outcome(c).1 <= t.wrong_kinds)
        .unwrap_or(1.0);
    // Four decimals, as the file keeps it.
    let threshold = (threshold * 10_000.0).ceil() / 10_000.0;
    let (accuracy_at_threshold, wrong_at_threshold) = outcome(threshold);
    let model = fit(examples, t, threshold);
    // The folds took every `folds`-th example: back to the examples' order.
    let mut right = vec![false; examples.len()];
    let mut i = 0;
    for fold in 0..t.folds {
        for j in (fold..examples.len()).step_by(t.folds) {
            right[j] = held_back[i].1 == held_back[i].2;
            i += 1;
        }
    }
    let validation = Validation {
        accuracy,
        accuracy_at_threshold,
        wrong_at_threshold,
        right,
    };
    // What is used is what the file says: weights to four decimals.
    let model = Model::parse(&model.render()).expect("a rendered model parses");
    (model, validation)
}

/// For each of `t.folds` folds (fold `f` holds the examples `i` with
/// `i % folds == f`), a model fitted on the other folds, with `threshold`.
pub fn fold_models(examples: &[Example], t: &Training, threshold: f32) -> Vec<Model> {
    (0..t.folds)
        .map(|fold| {
            let rest: Vec<Example> = (0..examples.len())
                .filter(|i| i % t.folds != fold)
                .map(|i| examples[i].clone())
                .collect();
            fit(&rest, t, threshold)
        })
        .collect()
}

/// One fit on all of `examples`, with `threshold` (no cross-validation).
fn fit(examples: &[Example], t: &Training, threshold: f32) -> Model {
    let c = t.c;
    let mut df: BTreeMap<&str, usize> = BTreeMap::new();
    for (f, _) in examples {
        for name in f {
            *df.entry(name.as_str()).or_default() += 1;
        }
    }
    let n = examples.len() as f64;
    let names: Vec<String> = df
        .iter()
        .filter(|(_, d)| **d >= t.min_documents)
        .map(|(name, _)| name.to_string())
        .collect();
    let index: HashMap<String, usize> = names
        .iter()
        .enumerate()
        .map(|(j, f)| (f.clone(), j))
        .collect();
    // scikit-learn's smooth idf, rounded as the file keeps it.
    let idf: Vec<f32> = names
        .iter()
        .map(|f| {
            let d = df[f.as_str()] as f64;
            let x = ((1.0 + n) / (1.0 + d)).ln() + 1.0;
            ((x * 10_000.0).round() / 10_000.0) as f32
        })
        .collect();
    let rows: Vec<(Vec<(usize, f64)>, usize)> = examples
        .iter()
        .map(|(f, kind)| {
            let js: Vec<usize> = f.iter().filter_map(|x| index.get(x).copied()).collect();
            let norm = js
                .iter()
                .map(|&j| f64::from(idf[j]).powi(2))
                .sum::<f64>()
                .sqrt()
                .max(f64::MIN_POSITIVE);
            let x = js.iter().map(|&j| (j, f64::from(idf[j]) / norm)).collect();
            let y = CLASSES
                .iter()
                .position(|k| k == kind)
                .expect("a training message of a class the model knows");
            (x, y)
        })
        .collect();
    let v = names.len();
    let objective = |w: &[f64], grad: &mut [f64]| -> f64 {
        grad.fill(0.0);
        let (weights, bias) = w.split_at(v * K);
        let (gw, gb) = grad.split_at_mut(v * K);
        let mut loss = 0.0;
        for (x, y) in &rows {
            let mut s: [f64; K] = bias.try_into().unwrap();
            for &(j, xj) in x {
                for k in 0..K {
                    s[k] += xj * weights[j * K + k];
                }
            }
            let p = softmax(&s);
            loss -= p[*y].max(1e-300).ln();
            let mut g = p;
            g[*y] -= 1.0;
            for &(j, xj) in x {
                for k in 0..K {
                    gw[j * K + k] += xj * g[k];
                }
            }
            for k in 0..K {
                gb[k] += g[k];
            }
        }
        for (g, w) in gw.iter_mut().zip(weights) {
            *g += w / c;
        }
        loss + weights.iter().map(|w| w * w).sum::<f64>() / (2.0 * c)
    };
    let w = lbfgs(vec![0.0; v * K + K], objective, 1e-5, 1000);
    let round = |x: f64| ((x * 10_000.0).round() / 10_000.0) as f32;
    Model {
        index,
        idf,
        weights: (0..v)
            .map(|j| std::array::from_fn(|k| round(w[j * K + k])))
            .collect(),
        bias: std::array::from_fn(|k| round(w[v * K + k])),
        names,
        threshold,
        provenance: t.provenance.clone(),
    }
}

/// Limited-memory BFGS (ten corrections, backtracking line search): the
/// minimum of a smooth convex function, until the largest partial derivative
/// is below `tolerance` or after `max_iterations`.
fn lbfgs(
    mut x: Vec<f64>,
    mut f: impl FnMut(&[f64], &mut [f64]) -> f64,
    tolerance: f64,
    max_iterations: usize,
) -> Vec<f64> {
    const M: usize = 10;
    let dot = |a: &[f64], b: &[f64]| a.iter().zip(b).map(|(x, y)| x * y).sum::<f64>();
    let mut g = vec![0.0; x.len()];
    let mut fx = f(&x, &mut g);
    let mut history: std::collections::VecDeque<(Vec<f64>, Vec<f64>, f64)> = Default::default();
    let mut x_new = vec![0.0; x.len()];
    let mut g_new = vec![0.0; x.len()];
    for _ in 0..max_iterations {
        if g.iter().fold(0.0f64, |m, v| m.max(v.abs())) < tolerance {
            break;
        }
        // Two-loop recursion: d = -H g.
        let mut d: Vec<f64> = g.iter().map(|v| -v).collect();
        let mut alphas = Vec::with_capacity(history.len());
        for (s, y, rho) in history.iter().rev() {
            let a = rho * dot(s, &d);
            d.iter_mut().zip(y).for_each(|(di, yi)| *di -= a * yi);
            alphas.push(a);
        }
        if let Some((s, y, _)) = history.back() {
            let gamma = dot(s, y) / dot(y, y);
            d.iter_mut().for_each(|di| *di *= gamma);
        }
        for ((s, y, rho), a) in history.iter().zip(alphas.iter().rev()) {
            let b = rho * dot(y, &d);
            d.iter_mut().zip(s).for_each(|(di, si)| *di += (a - b) * si);
        }
        let mut slope = dot(&g, &d);
        if slope >= 0.0 {
            // Not a descent direction: restart from the gradient.
            history.clear();
            d = g.iter().map(|v| -v).collect();
            slope = dot(&g, &d);
        }
        let mut step = if history.is_empty() {
            1.0 / dot(&g, &g).sqrt().max(1.0)
        } else {
            1.0
        };
        let mut f_new;
        loop {
            x_new
                .iter_mut()
                .zip(&x)
                .zip(&d)
                .for_each(|((n, xi), di)| *n = xi + step * di);
            f_new = f(&x_new, &mut g_new);
            if f_new <= fx + 1e-4 * step * slope || step < 1e-12 {
                break;
            }
            step *= 0.5;
        }
        let s: Vec<f64> = x_new.iter().zip(&x).map(|(a, b)| a - b).collect();
        let y: Vec<f64> = g_new.iter().zip(&g).map(|(a, b)| a - b).collect();
        let sy = dot(&s, &y);
        if sy > 1e-12 {
            if history.len() == M {
                history.pop_front();
            }
            history.push_back((s, y, 1.0 / sy));
        }
        std::mem::swap(&mut x, &mut x_new);
        std::mem::swap(&mut g, &mut g_new);
        let converged = (fx - f_new).abs() <= 1e-12 * fx.abs().max(1.0);
        fx = f_new;
        if converged {
            break;
        }
    }
    x
}

#[cfg(test)]
mod tests {
    use super::*;

    fn example(words: &str, kind: Kind) -> Example {
        let mut f: Vec<String> = words.split_whitespace().map(String::from).collect();
        f.sort();
        f.dedup();
        (f, kind)
    }

    #[test]
    fn learns_separable_words_and_round_trips_its_file() {
        let mut examples = Vec::new();
        for i in 0..30 {
            let extra = format!("w{}", i % 3);
            examples.push(example(
                &format!("assist urgent {extra}"),
                Kind::AssistanceRequest,
            ));
            examples.push(example(
                &format!("thank receiv {extra}"),
                Kind::Unclassified,
            ));
            examples.push(example(
                &format!("answer your question {extra}"),
                Kind::InformationReply,
            ));
        }
        let (model, v) = train(&examples, &Training::default());
        assert!(v.accuracy > 0.99, "{v:?}");
        let p = model.predict(&example("urgent assist", Kind::AssistanceRequest).0);
        assert_eq!(p.kind, Kind::AssistanceRequest);
        assert!(p.probability > 0.9, "{p:?}");
        assert_eq!(p.evidence[0], "assist");
        let again = Model::parse(&model.render()).unwrap();
        assert_eq!(again.render(), model.render());
        // Nothing known: the classes' prior, never a panic.
        let none = model.predict(&[]);
        assert!(none.probability < 0.5, "{none:?}");
        assert!(none.evidence.is_empty());
    }

    #[test]
    fn a_damaged_file_is_refused() {
        assert!(Model::parse("@threshold\t0.5\n").is_err());
        let classes: Vec<&str> = CLASSES.iter().map(|k| k.code()).collect();
        let head = format!("@classes\t{}\n@threshold\t0.5\n", classes.join("\t"));
        assert!(Model::parse(&head).is_ok());
        assert!(Model::parse(&format!("{head}assist\t1.0\t0.1\n")).is_err());
        assert!(Model::parse(&format!("{head}assist\t1\t1\t1\t1\t1\t1\tNaN\n")).is_err());
        assert!(Model::parse(&head.replace("0.5", "1.5")).is_err());
    }
}
