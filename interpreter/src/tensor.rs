//! Tensor values: f32 arrays that may stay in the buffer of the library
//! that produced them (ONNX Runtime's outputs) until a script needs its own
//! copy. Reading a tensor's shape, iterating it, viewing it, digesting it or
//! recording it never copies; only operations that need an owned array (and
//! reach it through `Deref`) make one, once.

use std::fmt;
use std::ops::Deref;
use std::sync::{Arc, OnceLock};

use ndarray::{ArrayD, ArrayViewD};

/// A buffer a tensor can be read from without copying it.
pub trait Backing: Send + Sync {
    /// The data in standard (row-major) layout; its shape must not change.
    fn view(&self) -> ArrayViewD<'_, f32>;
}

struct Inner {
    shape: Vec<usize>,
    owned: OnceLock<ArrayD<f32>>,
    backing: Option<Box<dyn Backing>>,
    /// sha256 of the values (little-endian f32 bits), computed once.
    digest: OnceLock<[u8; 32]>,
}

/// An immutable f32 tensor, cheap to clone (shared).
#[derive(Clone)]
pub struct Tensor(Arc<Inner>);

impl Tensor {
    pub fn new(a: ArrayD<f32>) -> Tensor {
        let owned = OnceLock::new();
        let shape = a.shape().to_vec();
        let _ = owned.set(a);
        Tensor(Arc::new(Inner { shape, owned, backing: None, digest: OnceLock::new() }))
    }

    /// A tensor read from `b` until an owned copy is needed.
    pub fn backed(b: impl Backing + 'static) -> Tensor {
        let shape = b.view().shape().to_vec();
        Tensor(Arc::new(Inner { shape, owned: OnceLock::new(), backing: Some(Box::new(b)), digest: OnceLock::new() }))
    }

    /// The data, without copying it.
    pub fn view(&self) -> ArrayViewD<'_, f32> {
        match (self.0.owned.get(), &self.0.backing) {
            (Some(a), _) => a.view(),
            (None, Some(b)) => b.view(),
            // `new` always sets `owned`; `backed` always has a backing.
            (None, None) => self.array().view(),
        }
    }

    /// The data as an owned array, copied out of its backing on first use.
    pub fn array(&self) -> &ArrayD<f32> {
        self.0.owned.get_or_init(|| match &self.0.backing {
            Some(b) => b.view().to_owned(),
            None => ArrayD::zeros(self.0.shape.clone()),
        })
    }

    /// An owned copy of the data (one copy, straight from the backing).
    pub fn to_array(&self) -> ArrayD<f32> {
        match self.0.owned.get() {
            Some(a) => a.clone(),
            None => self.view().to_owned(),
        }
    }

    /// Whether the data is still only in its backing (no copy made yet).
    pub fn is_backed_only(&self) -> bool {
        self.0.owned.get().is_none()
    }

    pub fn shape(&self) -> &[usize] {
        &self.0.shape
    }
    pub fn ndim(&self) -> usize {
        self.0.shape.len()
    }
    pub fn len(&self) -> usize {
        self.0.shape.iter().product()
    }
    pub fn is_empty(&self) -> bool {
        self.len() == 0
    }
    /// The values in row-major order, without copying them.
    pub fn iter(&self) -> impl Iterator<Item = &f32> + '_ {
        self.view().into_iter()
    }
    /// The sha256 of the values in row-major order as little-endian f32
    /// bits (the shape is not included); computed once per tensor.
    pub fn content_digest(&self) -> [u8; 32] {
        *self.0.digest.get_or_init(|| {
            use sha2::{Digest, Sha256};
            let mut h = Sha256::new();
            let mut buf = Vec::with_capacity(1 << 16);
            for x in self.iter() {
                buf.extend_from_slice(&x.to_bits().to_le_bytes());
                if buf.len() >= 1 << 16 {
                    h.update(&buf);
                    buf.clear();
                }
            }
            h.update(&buf);
            h.finalize().into()
        })
    }

    /// Whether two tensors share one buffer (a cheap equality check).
    pub fn ptr_eq(a: &Tensor, b: &Tensor) -> bool {
        Arc::ptr_eq(&a.0, &b.0)
    }
}

impl Deref for Tensor {
    type Target = ArrayD<f32>;
    fn deref(&self) -> &ArrayD<f32> {
        self.array()
    }
}

impl From<ArrayD<f32>> for Tensor {
    fn from(a: ArrayD<f32>) -> Tensor {
        Tensor::new(a)
    }
}

impl PartialEq for Tensor {
    fn eq(&self, other: &Tensor) -> bool {
        Tensor::ptr_eq(self, other) || (self.shape() == other.shape() && self.view() == other.view())
    }
}

impl fmt::Debug for Tensor {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        write!(f, "Tensor{:?}", self.shape())
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    struct Counted(ArrayD<f32>);
    impl Backing for Counted {
        fn view(&self) -> ArrayViewD<'_, f32> {
            self.0.view()
        }
    }

    #[test]
    fn a_backed_tensor_is_read_without_a_copy_until_an_array_is_needed() {
        let a = ArrayD::from_shape_vec(vec![2, 3], (0..6).map(|x| x as f32).collect()).unwrap_or_default();
        let t = Tensor::backed(Counted(a.clone()));
        assert_eq!(t.shape(), &[2, 3]);
        assert_eq!(t.len(), 6);
        assert_eq!(t.iter().copied().collect::<Vec<_>>(), vec![0.0, 1.0, 2.0, 3.0, 4.0, 5.0]);
        assert_eq!(t, Tensor::new(a.clone()));
        assert!(t.is_backed_only(), "shape, iteration and equality must not copy");
        assert_eq!(t.mapv(|x| x * 2.0)[[1, 2]], 10.0);
        assert!(!t.is_backed_only(), "an ndarray operation copies once");
        assert_eq!(*t.array(), a);
    }
}
