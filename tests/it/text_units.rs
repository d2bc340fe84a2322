//! A language model's unit treated as MAIA treats a vision unit: called on
//! a text it gives its value at each token beside the token (and `show`
//! prints them side by side), and `exemplars` ranks texts of the provisioned
//! corpus (Debian's fortunes) by it, marking the token where each peaks;
//! report.html highlights that token. SmolLM2-135M's layer-6 neuron 321 is
//! the one a real model found firing on "≠" (tests/agent-transcripts/units/u4).

use crate::support::{temp_with, Test};

#[test]
fn a_language_model_neuron_shows_its_tokens_and_finds_its_contexts_in_the_corpus() {
    let script = r#"seed 2
let lm = model("smollm2-135m")
let u = unit(lm, "/model/layers.6/mlp/Mul_output_0", neuron: 321)
let r = u("The result is 5 ≠ 6, so the claim fails.")
show "token by token", r
record "tokens", r.tokens
record "at", r.at
record "max", r.max
assert len(r.tokens) == len(r.activations) and r.values.shape == [1, len(r.tokens)]
let texts = sample(corpus(), 40, seed: 2) + ["We find that 3 ≠ 4 in general."]
let ex = exemplars(u, texts, k: 3, bottom: 1)
show "contexts", ex.contexts
record "top", ex.contexts[0]
record "top index", ex.indices[0]
record "count", ex.count
"#;
    let t = temp_with(&[("n.assay", script)]);
    let out = Test::new(t.path()).args(["run", "n.assay", "--json"]).run();
    assert_eq!(out.code, 0, "{}{}", out.stdout, out.stderr);
    let j = out.json();
    let rec = &j["results"]["records"];
    // The peak is the last byte piece of "≠", as the model found.
    let at = rec["at"].as_u64().unwrap() as usize;
    let tokens: Vec<&str> = rec["tokens"].as_array().unwrap().iter().map(|v| v.as_str().unwrap()).collect();
    assert!(tokens.concat().contains("The result is 5"), "{tokens:?}");
    assert!(tokens[at - 1].contains('â') || tokens[at - 1].contains('≠'), "{tokens:?} at {at}");
    assert!(rec["max"].as_f64().unwrap() > 0.5, "{rec}");
    // Among 40 corpus passages and one planted sentence, the planted one
    // ranks first, its "≠" marked.
    assert_eq!(rec["top index"], 40, "{rec}");
    assert!(rec["top"].as_str().unwrap().contains("⟦≠⟧"), "{rec}");
    assert_eq!(rec["count"], 41);
    // Side by side in what was shown.
    let shown = j["shows"][0]["text"].as_str().unwrap();
    assert!(shown.contains("max") && shown.contains("\" result\" ") && shown.contains(" | "), "{shown}");
    // report.html highlights the token.
    let run_dir = t.path().join(j["run_dir"].as_str().unwrap());
    let html = std::fs::read_to_string(run_dir.join("report.html")).unwrap();
    assert!(html.contains("<mark>≠</mark>"), "no highlighted token in report.html");
    assert!(html.contains("class=\"tokens\""), "no token profile in report.html");
}

#[test]
fn the_corpus_is_pinned_and_refuses_an_unknown_section() {
    let t = temp_with(&[("c.assay", "record \"n\", len(corpus())\nrecord \"law\", len(corpus(section: \"law\"))\n")]);
    let out = Test::new(t.path()).args(["run", "c.assay", "--json"]).run();
    assert_eq!(out.code, 0, "{}{}", out.stdout, out.stderr);
    let j = out.json();
    let (n, law) = (j["results"]["records"]["n"].as_u64().unwrap(), j["results"]["records"]["law"].as_u64().unwrap());
    assert!(n > 3000 && law > 0 && law < n, "{n} {law}");
    // The corpus file is an input of the run, digested in its manifest.
    let run_dir = t.path().join(j["run_dir"].as_str().unwrap());
    let manifest = std::fs::read_to_string(run_dir.join("manifest.json")).unwrap();
    assert!(manifest.contains("fortunes-1.99.1-7.3.tsv"), "{manifest}");
    std::fs::write(t.path().join("bad.assay"), "record \"x\", corpus(section: \"lawz\")\n").unwrap();
    let out = Test::new(t.path()).args(["run", "bad.assay"]).run();
    assert_eq!(out.code, 1);
    assert!(out.stderr.contains("did you mean `law`"), "{}", out.stderr);
}
