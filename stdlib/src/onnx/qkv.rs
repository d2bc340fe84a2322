//! The queries, keys and values of an attention block, found by the
//! graph's structure: the operands of the scores matmul Q·Kᵀ (back from the
//! Softmax through the scale, mask, soft-capping and reshapes) and of the
//! value matmul, or a fused op's Q, K and V inputs, each followed back to
//! the one projection by weights it was computed from (through rotary
//! embeddings, transposes, repeats for grouped-query attention and a
//! fused QKV projection's split). The candidates from that projection
//! forward are returned; `blocks` keeps the last shaped [N, T, width].

use std::collections::{HashSet, VecDeque};

use crate::onnx::attention::{Index, MAX_WALK};
use crate::onnx::streams::data_inputs;

/// The most tensors the search back from one operand visits.
const MAX_BACK: usize = 4096;

/// The two operands of the matmul whose scores reach the Softmax input
/// `scores` through scaling, masking, soft-capping, casts and reshapes.
pub(crate) fn scores_inputs(idx: &Index, scores: &str) -> Option<(String, String)> {
    let mut queue = VecDeque::from([scores.to_string()]);
    let mut seen: HashSet<String> = HashSet::from([scores.to_string()]);
    let mut steps = 0;
    while let Some(t) = queue.pop_front() {
        steps += 1;
        if steps > MAX_WALK {
            return None;
        }
        let Some(n) = idx.producer(&t) else { continue };
        match n.op_type() {
            "MatMul" if n.input.len() == 2 && n.input.iter().all(|x| !idx.is_const(x)) => {
                return Some((n.input[0].clone(), n.input[1].clone()));
            }
            "Add" | "Sub" | "Mul" | "Div" | "Where" | "Cast" | "Tanh" | "Reshape" | "Identity" | "Softcap" => {
                for i in data_inputs(n).iter().filter(|x| !x.is_empty() && !idx.is_const(x)) {
                    if seen.insert(i.clone()) {
                        queue.push_back(i.clone());
                    }
                }
            }
            _ => {}
        }
    }
    None
}

/// From the one projection by weights `operand` was computed from, the
/// tensors on the way to it: the projection's output, then through a bias,
/// casts, reshapes and a fused projection's split, as long as the way
/// leads to `operand`. Empty where no single projection is found.
pub(crate) fn projected_from(idx: &Index, operand: &str) -> Vec<String> {
    let mut seen: HashSet<String> = HashSet::from([operand.to_string()]);
    let mut todo = vec![operand.to_string()];
    let mut projections: Vec<String> = Vec::new();
    while let Some(x) = todo.pop() {
        if seen.len() > MAX_BACK {
            return Vec::new();
        }
        let Some(n) = idx.producer(&x) else { continue };
        if matches!(n.op_type(), "Softmax") {
            return Vec::new();
        }
        if n.input.first().is_some_and(|i| idx.projects(n, i)) {
            if let Some(o) = n.output.first() {
                if !projections.contains(o) {
                    projections.push(o.clone());
                }
            }
            continue;
        }
        for i in data_inputs(n).iter().filter(|x| !x.is_empty() && !idx.is_const(x)) {
            if seen.insert(i.clone()) {
                todo.push(i.clone());
            }
        }
    }
    let [start] = projections.as_slice() else { return Vec::new() };
    let mut chain = vec![start.clone()];
    for _ in 0..MAX_WALK {
        let t = chain.last().cloned().unwrap_or_default();
        // The consumers on the way to the operand.
        let on_way: Vec<_> =
            idx.data_consumers(&t).into_iter().filter(|c| c.output.iter().any(|o| seen.contains(o))).collect();
        let [c] = on_way.as_slice() else { break };
        let from_first = c.input.first() == Some(&t);
        let ok = match c.op_type() {
            "Add" => c.input.iter().filter(|x| **x != t).all(|x| idx.is_const(x)),
            "Reshape" | "Cast" | "Identity" | "Split" | "Slice" | "Gather" | "Squeeze" | "Unsqueeze" => from_first,
            _ => false,
        };
        let next = c.output.iter().find(|o| seen.contains(*o));
        match next {
            Some(o) if ok => chain.push(o.clone()),
            _ => break,
        }
    }
    chain
}
