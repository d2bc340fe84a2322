//! Unit tests of `model.rs`: captured tensors left in ONNX Runtime's
//! buffers read the same as copies, and stay valid after their session is
//! dropped and after the model itself is.
#![allow(clippy::unwrap_used, clippy::expect_used, reason = "tests")]
use super::*;
use crate::models::build;
use crate::models::planted;

fn ids() -> Vec<(String, ArrayD<f32>)> {
    vec![("input_ids".into(), ndarray::arr2(&[[2.0f32, 1.0, 3.0]]).into_dyn())]
}

#[test]
fn lazy_outputs_equal_copies_and_outlive_their_session_and_model() {
    let proto = planted::build(planted::Variant::Original);
    let (path, bytes, sha) = build::cache_built("tests", "planted", &proto).unwrap();
    let m = Model::load(&path, "planted", &bytes, sha, Provider::Cpu).unwrap();
    let names = vec!["/layers.0/heads_output_0".to_string(), "/layers.1/heads_output_0".to_string()];
    let lazy = m.capture_lazy(ids(), &names).unwrap();
    let copies = m.capture(ids(), &names).unwrap();
    for n in &names {
        assert!(lazy[n].is_backed_only(), "capture_lazy must not copy `{n}`");
        assert_eq!(lazy[n].view(), copies[n].view(), "`{n}` differs between the lazy and the copied capture");
    }
    // Evict the capture's session by building more rewritten sessions than
    // are kept, then drop the model: the tensors must still read the same.
    for i in 0..=MAX_REWRITTEN_SESSIONS {
        m.capture(ids(), &names[i % 2..=i % 2]).unwrap();
        m.reduced(ids(), &names[0], "ReduceMax", &[i as i64 % 2]).unwrap();
    }
    drop(m);
    for n in &names {
        assert_eq!(lazy[n].view(), copies[n].view(), "`{n}` changed after its session was dropped");
        assert_eq!(*lazy[n].array(), copies[n]);
    }
    // An output that is a graph input is copied (its buffer was lent).
    let m = Model::load(&path, "planted", &bytes, String::new(), Provider::Cpu).unwrap();
    let out = m.capture_lazy(ids(), &["input_ids".to_string()]).unwrap();
    assert!(!out["input_ids"].is_backed_only());
    assert_eq!(out["input_ids"].iter().copied().collect::<Vec<_>>(), vec![2.0, 1.0, 3.0]);
}
