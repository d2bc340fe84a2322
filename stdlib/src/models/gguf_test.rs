//! Unit tests of `gguf.rs`, kept beside it.
use super::*;

/// A small GGUF file built by hand: one Q8_0 and one Q4_1 tensor.
fn sample() -> Vec<u8> {
    let mut b = Vec::new();
    b.extend(b"GGUF");
    b.extend(3u32.to_le_bytes());
    b.extend(2u64.to_le_bytes()); // tensors
    b.extend(1u64.to_le_bytes()); // metadata
    let s = |b: &mut Vec<u8>, x: &str| {
        b.extend((x.len() as u64).to_le_bytes());
        b.extend(x.as_bytes());
    };
    s(&mut b, "llama.block_count");
    b.extend(4u32.to_le_bytes());
    b.extend(30u32.to_le_bytes());
    for (name, kind, off) in [("q8", 8u32, 0u64), ("q41", 3u32, 64u64)] {
        s(&mut b, name);
        b.extend(1u32.to_le_bytes());
        b.extend(32u64.to_le_bytes());
        b.extend(kind.to_le_bytes());
        b.extend(off.to_le_bytes());
    }
    while b.len() % 32 != 0 {
        b.push(0);
    }
    // Q8_0: scale 0.5, values -16..16.
    let base = b.len();
    b.extend(half::f16::from_f32(0.5).to_le_bytes());
    b.extend((-16i8..16).map(|q| q as u8));
    b.resize(base + 64, 0);
    // Q4_1: d = 1, m = -8, nibbles: low = j, high = 15 - j.
    b.extend(half::f16::from_f32(1.0).to_le_bytes());
    b.extend(half::f16::from_f32(-8.0).to_le_bytes());
    b.extend((0u8..16).map(|j| j | ((15 - j) << 4)));
    b
}

#[test]
fn reads_metadata_and_dequantizes() {
    let bytes = sample();
    let g = Gguf::parse(&bytes).unwrap();
    assert_eq!(g.meta_i64("llama.block_count").unwrap(), 30);
    let (shape, q8) = g.tensor("q8").unwrap();
    assert_eq!(shape, [32]);
    assert_eq!(q8[0], -8.0);
    assert_eq!(q8[31], 7.5);
    let (_, q41) = g.tensor("q41").unwrap();
    assert_eq!(q41[0], -8.0);
    assert_eq!(q41[15], 7.0);
    assert_eq!(q41[16], 7.0);
    assert_eq!(q41[31], -8.0);
}

#[test]
fn rejects_other_and_truncated_files() {
    assert!(Gguf::parse(b"GGML....").is_err());
    let bytes = sample();
    assert!(Gguf::parse(&bytes[..40]).is_err());
    let g = Gguf::parse(&bytes[..bytes.len() - 10]).unwrap();
    assert!(g.tensor("q41").is_err(), "data past the end is an error, not a panic");
}
