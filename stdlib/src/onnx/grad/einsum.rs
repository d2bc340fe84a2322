//! Einsum's rule: for one or two operands, each operand's gradient is
//! itself an Einsum of the output's gradient (and the other operand) back
//! to the operand's subscripts, as long as every index of the operand is
//! kept in the output or shared with the other operand. Diagonals
//! (an index repeated within a term), an index summed over one operand
//! alone and three or more operands are refused.

use super::emit::string;
use super::node::{attr_s, Grads};
use super::Emit;
use crate::onnx::proto::NodeProto;

/// A term's index letters, with `...` as one index.
fn indices(term: &str) -> Vec<String> {
    let mut out = Vec::new();
    let mut rest = term;
    while !rest.is_empty() {
        if let Some(r) = rest.strip_prefix("...") {
            out.push("...".to_string());
            rest = r;
        } else {
            let c = rest.chars().next().unwrap_or(' ');
            out.push(c.to_string());
            rest = &rest[c.len_utf8()..];
        }
    }
    out
}

pub(super) fn einsum(e: &mut Emit, n: &NodeProto, g: &str, need: &[bool]) -> Grads {
    let eq: String =
        attr_s(n, "equation").ok_or("Einsum has no equation")?.chars().filter(|c| !c.is_whitespace()).collect();
    let (lhs, out) = eq.split_once("->").ok_or("an Einsum without an explicit output (`->`) has no rule")?;
    let terms: Vec<&str> = lhs.split(',').collect();
    if terms.len() != n.input.len() || terms.is_empty() || terms.len() > 2 {
        return Err("only Einsum of one or two operands has a rule".into());
    }
    let out_ix = indices(out);
    for t in terms.iter().copied().chain(std::iter::once(out)) {
        let ix = indices(t);
        if (1..ix.len()).any(|i| ix[..i].contains(&ix[i])) {
            return Err(format!("`{t}` repeats an index (a diagonal): no rule"));
        }
    }
    let ellipsis = |t: &str| t.contains("...");
    if terms.iter().any(|t| ellipsis(t)) && !(terms.iter().all(|t| ellipsis(t)) && ellipsis(out)) {
        return Err("`...` must appear in every term for a rule".into());
    }
    let mut grads = vec![None; terms.len()];
    for (i, term) in terms.iter().enumerate() {
        if !need.get(i).copied().unwrap_or(false) {
            continue;
        }
        let other = terms.get(1 - i.min(1)).filter(|_| terms.len() == 2);
        let other_ix = other.map(|t| indices(t)).unwrap_or_default();
        if let Some(lost) = indices(term).into_iter().find(|c| !out_ix.contains(c) && !other_ix.contains(c)) {
            return Err(format!("index `{lost}` is summed over one operand alone: no rule"));
        }
        let dx = match other {
            Some(o) => {
                let b = &n.input[1 - i];
                e.op("Einsum", &[g, b], vec![string("equation", &format!("{out},{o}->{term}"))])
            }
            None => e.op("Einsum", &[g], vec![string("equation", &format!("{out}->{term}"))]),
        };
        // `...` may broadcast between the operands: sum back to this one's shape.
        grads[i] = Some(if ellipsis(term) { e.unbroadcast(&dx, &n.input[i]) } else { dx });
    }
    Ok(grads)
}
