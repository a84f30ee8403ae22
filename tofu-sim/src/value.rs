//! A property's value.

/// The value of a simulated instrument's property.
#[derive(Debug, Clone, PartialEq)]
pub(crate) enum Value {
    Float(f64),
    Int(i64),
    Str(String),
    /// Raw bytes, read and written as IEEE 488.2 definite-length blocks.
    Block(Vec<u8>),
}

impl Value {
    pub(crate) fn as_f64(&self) -> Option<f64> {
        match self {
            Value::Float(x) => Some(*x),
            Value::Int(i) => Some(*i as f64),
            Value::Str(_) | Value::Block(_) => None,
        }
    }
}

/// `size` bytes of a fixed pattern: a block property's default when given as a size.
pub(crate) fn pattern(size: usize) -> Vec<u8> {
    (0..size)
        .map(|i| (i.wrapping_mul(7).wrapping_add(3) % 251) as u8)
        .collect()
}

/// Writes `data` as an IEEE 488.2 definite-length block (`#<n><length><data>`).
pub fn definite_block(data: &[u8]) -> Vec<u8> {
    let len = data.len().to_string();
    let mut out = Vec::with_capacity(data.len() + len.len() + 2);
    out.push(b'#');
    out.extend_from_slice(len.len().to_string().as_bytes());
    out.extend_from_slice(len.as_bytes());
    out.extend_from_slice(data);
    out
}
