//! Emitting the backward graph's nodes: unique names under `assay.grad/`,
//! constants, and the shape helpers every rule shares (sums over
//! broadcast axes, reductions in the form the model's opset wants).

use crate::onnx::proto::{
    attribute_proto::AttributeType, tensor_proto::DataType, AttributeProto, NodeProto, TensorProto,
};

/// Attributes for the nodes the backward graph adds (the mechanics layer's
/// own: `models::build` sits above it).
pub(crate) fn int(name: &str, v: i64) -> AttributeProto {
    AttributeProto {
        name: Some(name.into()),
        r#type: Some(AttributeType::Int as i32),
        i: Some(v),
        ..Default::default()
    }
}

pub(crate) fn ints(name: &str, v: &[i64]) -> AttributeProto {
    AttributeProto {
        name: Some(name.into()),
        r#type: Some(AttributeType::Ints as i32),
        ints: v.to_vec(),
        ..Default::default()
    }
}

pub(crate) fn string(name: &str, v: &str) -> AttributeProto {
    AttributeProto {
        name: Some(name.into()),
        r#type: Some(AttributeType::String as i32),
        s: Some(v.as_bytes().to_vec()),
        ..Default::default()
    }
}

pub(crate) struct Emit {
    nodes: Vec<NodeProto>,
    inits: Vec<TensorProto>,
    count: usize,
    /// The default opset the model imports (the forms of ReduceSum,
    /// ReduceMean, Squeeze and Unsqueeze depend on it).
    pub(crate) opset: i64,
    /// The model's int64 constants (initializers and Constant nodes), for
    /// rules that need to know an index tensor's values.
    pub(crate) consts: std::collections::HashMap<String, Vec<i64>>,
    /// Ranks the graph states (initializers, declared inputs and values).
    pub(crate) ranks: std::collections::HashMap<String, usize>,
    /// Shapes known before the run (ONNX Runtime's inference, declared
    /// inputs, initializers): a dimension is a number, a symbol, or None.
    pub(crate) shapes: std::collections::HashMap<String, Vec<Dim>>,
}

/// One dimension of a statically known shape.
#[derive(Clone, Debug, PartialEq)]
pub enum Dim {
    Fixed(i64),
    Symbol(String),
    Unknown,
}

impl Dim {
    /// Whether two dimensions are surely equal.
    pub(crate) fn same(&self, other: &Dim) -> bool {
        match (self, other) {
            (Dim::Fixed(a), Dim::Fixed(b)) => a == b,
            (Dim::Symbol(a), Dim::Symbol(b)) => a == b && !a.is_empty(),
            _ => false,
        }
    }
}

impl Emit {
    pub(crate) fn new(opset: i64) -> Emit {
        Emit {
            nodes: Vec::new(),
            inits: Vec::new(),
            count: 0,
            opset,
            consts: Default::default(),
            ranks: Default::default(),
            shapes: Default::default(),
        }
    }

    fn fresh(&mut self, op: &str) -> String {
        self.count += 1;
        format!("assay.grad/{op}_{}", self.count)
    }

    /// A node with one output, named afresh; returns the output.
    pub(crate) fn op(&mut self, op: &str, inputs: &[&str], attrs: Vec<AttributeProto>) -> String {
        let out = self.fresh(op);
        self.node_to(op, inputs, attrs, &out);
        out
    }

    pub(crate) fn node_to(&mut self, op: &str, inputs: &[&str], attrs: Vec<AttributeProto>, output: &str) {
        let name = self.fresh(op);
        self.nodes.push(NodeProto {
            input: inputs.iter().map(|s| s.to_string()).collect(),
            output: vec![output.to_string()],
            name: Some(name),
            op_type: Some(op.into()),
            attribute: attrs,
            ..Default::default()
        });
    }

    /// A clone of a forward node with new inputs and fresh outputs.
    pub(crate) fn clone_node(&mut self, n: &NodeProto, inputs: &[&str]) -> Vec<String> {
        let base = self.fresh(n.op_type());
        let outs: Vec<String> = (0..n.output.len()).map(|i| format!("{base}.{i}")).collect();
        let mut c = n.clone();
        c.name = Some(base);
        c.input = inputs.iter().map(|s| s.to_string()).collect();
        c.output = outs.clone();
        self.nodes.push(c);
        outs
    }

    fn init(&mut self, t: TensorProto) -> String {
        let name = self.fresh("const");
        let mut t = t;
        t.name = Some(name.clone());
        self.inits.push(t);
        name
    }

    /// A float scalar.
    pub(crate) fn const_f32(&mut self, v: f32) -> String {
        self.init(TensorProto { data_type: Some(DataType::Float as i32), float_data: vec![v], ..Default::default() })
    }

    /// An int64 scalar.
    pub(crate) fn const_i64(&mut self, v: i64) -> String {
        self.init(TensorProto { data_type: Some(DataType::Int64 as i32), int64_data: vec![v], ..Default::default() })
    }

    /// A 1-D int64 tensor.
    pub(crate) fn const_i64s(&mut self, v: &[i64]) -> String {
        self.init(TensorProto {
            data_type: Some(DataType::Int64 as i32),
            dims: vec![v.len() as i64],
            int64_data: v.to_vec(),
            ..Default::default()
        })
    }

    /// Float zeros of a runtime shape.
    pub(crate) fn zeros(&mut self, shape: &str) -> String {
        self.filled(shape, 0.0)
    }

    /// A float tensor of a runtime shape filled with `v`.
    pub(crate) fn filled(&mut self, shape: &str, v: f32) -> String {
        let t = TensorProto { data_type: Some(DataType::Float as i32), float_data: vec![v], ..Default::default() };
        self.constant_of_shape(shape, t)
    }

    /// Int64 ones of a runtime shape.
    pub(crate) fn ones_i64(&mut self, shape: &str) -> String {
        let t = TensorProto { data_type: Some(DataType::Int64 as i32), int64_data: vec![1], ..Default::default() };
        self.constant_of_shape(shape, t)
    }

    /// ConstantOfShape filled with the one value of `t`.
    fn constant_of_shape(&mut self, shape: &str, mut t: TensorProto) -> String {
        t.dims = vec![1];
        let value = AttributeProto {
            name: Some("value".into()),
            r#type: Some(AttributeType::Tensor as i32),
            t: Some(t),
            ..Default::default()
        };
        self.op("ConstantOfShape", &[shape], vec![value])
    }

    /// The sum of gradient contributions (one is itself).
    pub(crate) fn sum(&mut self, parts: Vec<String>) -> String {
        match parts.len() {
            1 => parts.into_iter().next().unwrap_or_default(),
            _ => {
                let refs: Vec<&str> = parts.iter().map(String::as_str).collect();
                self.op("Sum", &refs, vec![])
            }
        }
    }

    pub(crate) fn shape(&mut self, x: &str) -> String {
        self.op("Shape", &[x], vec![])
    }

    /// The number of elements of `x`, as a float scalar.
    pub(crate) fn size_f(&mut self, x: &str) -> String {
        let s = self.op("Size", &[x], vec![]);
        self.cast(&s, DataType::Float)
    }

    pub(crate) fn cast(&mut self, x: &str, to: DataType) -> String {
        self.op("Cast", &[x], vec![int("to", to as i64)])
    }

    /// As [`Emit::unbroadcast`] for a `g` shaped as the forward tensor
    /// `y`, deciding the axes to sum here where ONNX Runtime's inference
    /// states both shapes' ranks: the leading axes `x` lacks, and those
    /// where `x` is statically 1 and `y` is not. Other axes are taken to
    /// match; the final Reshape to `x`'s shape then fails (never silently
    /// mis-sums) if one did not. Only where the shapes are unknown is the
    /// general runtime form emitted (it builds much more slowly).
    pub(crate) fn unbroadcast_like(&mut self, g: &str, y: &str, x: &str) -> String {
        let (Some(sy), Some(sx)) = (self.shapes.get(y).cloned(), self.shapes.get(x).cloned()) else {
            return self.unbroadcast(g, x);
        };
        if sx.len() > sy.len() {
            return self.unbroadcast(g, x);
        }
        let lead = sy.len() - sx.len();
        let mut axes: Vec<i64> = (0..lead as i64).collect();
        for (i, dx) in sx.iter().enumerate() {
            let dy = &sy[lead + i];
            if *dx == Dim::Fixed(1) && *dy != Dim::Fixed(1) {
                axes.push((lead + i) as i64);
            }
        }
        let r = if axes.is_empty() { g.to_string() } else { self.reduce("ReduceSum", g, &axes, true) };
        let s = self.shape(x);
        self.op("Reshape", &[&r, &s], vec![])
    }

    /// `g` summed over the axes `x` was broadcast along, shaped as `x`.
    pub(crate) fn unbroadcast(&mut self, g: &str, x: &str) -> String {
        let sx = self.shape(x);
        let sg = self.shape(g);
        let rx = self.shape(&sx);
        let rg = self.shape(&sg);
        let d = self.op("Sub", &[&rg, &rx], vec![]);
        let one = self.const_i64s(&[1]);
        let ones = self.ones_i64(&d);
        let padded = self.op("Concat", &[&ones, &sx], vec![int("axis", 0)]);
        let is_one = self.op("Equal", &[&padded, &one], vec![]);
        let g_one = self.op("Equal", &[&sg, &one], vec![]);
        let g_more = self.op("Not", &[&g_one], vec![]);
        let both = self.op("And", &[&is_one, &g_more], vec![]);
        let nz = self.op("NonZero", &[&both], vec![]);
        let minus = self.const_minus_one();
        let axes = self.op("Reshape", &[&nz, &minus], vec![]);
        let r = self.op("ReduceSum", &[g, &axes], vec![int("keepdims", 1), int("noop_with_empty_axes", 1)]);
        self.op("Reshape", &[&r, &sx], vec![])
    }

    fn const_minus_one(&mut self) -> String {
        self.const_i64s(&[-1])
    }

    /// `op` (ReduceSum or ReduceMean) over fixed axes, in the opset's form.
    pub(crate) fn reduce(&mut self, op: &str, x: &str, axes: &[i64], keepdims: bool) -> String {
        let input_form = match op {
            "ReduceSum" => self.opset >= 13,
            _ => self.opset >= 18,
        };
        if input_form {
            let a = self.const_i64s(axes);
            self.op(op, &[x, &a], vec![int("keepdims", keepdims as i64)])
        } else {
            self.op(op, &[x], vec![ints("axes", axes), int("keepdims", keepdims as i64)])
        }
    }

    /// Unsqueeze at fixed axes (opset 13's input form).
    pub(crate) fn unsqueeze(&mut self, x: &str, axes: &[i64]) -> String {
        let a = self.const_i64s(axes);
        self.op("Unsqueeze", &[x, &a], vec![])
    }

    pub(crate) fn finish(self) -> (Vec<NodeProto>, Vec<TensorProto>) {
        (self.nodes, self.inits)
    }
}
