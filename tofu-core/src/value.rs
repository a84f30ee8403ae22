//! Measured values: what a measurement holds once it is set.

use std::sync::Arc;

use serde::ser::{SerializeSeq, Serializer};

/// The value of a measurement, as recorded.
///
/// Multi-dimensional values are kept as typed columns ([`Columns`]), not as rows of boxed
/// values: a sweep of a million points is four `Vec<f64>`.
#[derive(Debug, Clone, PartialEq)]
#[non_exhaustive]
pub enum Value {
    /// A number. NaN and infinities are kept as they are (and fail the measurement).
    Number(f64),
    /// A string.
    Text(String),
    /// A boolean.
    Bool(bool),
    /// A structured value recorded as is (lists, maps…).
    Json(serde_json::Value),
    /// The points of a multi-dimensional measurement.
    Columns(Columns),
}

impl Value {
    /// The number, if this value is one.
    pub fn as_f64(&self) -> Option<f64> {
        match self {
            Value::Number(v) => Some(*v),
            _ => None,
        }
    }

    /// The string, if this value is one.
    pub fn as_str(&self) -> Option<&str> {
        match self {
            Value::Text(s) => Some(s),
            _ => None,
        }
    }

    /// The boolean, if this value is one.
    pub fn as_bool(&self) -> Option<bool> {
        match self {
            Value::Bool(b) => Some(*b),
            _ => None,
        }
    }

    /// The columns of a multi-dimensional value.
    pub fn as_columns(&self) -> Option<&Columns> {
        match self {
            Value::Columns(c) => Some(c),
            _ => None,
        }
    }
}

/// The points of a multi-dimensional measurement: one column per dimension plus the value
/// column. Row `i` is `(dimension_0[i], …, dimension_n[i], values[i])`.
///
/// The points are shared between clones (copied only when a clone is changed): a record kept
/// by an observer's event and by the run costs one sweep in memory, not two.
#[derive(Debug, Clone, PartialEq, Default)]
pub struct Columns {
    points: Arc<Points>,
}

#[derive(Debug, Clone, PartialEq, Default)]
struct Points {
    dimensions: Vec<Vec<f64>>,
    values: Vec<f64>,
}

impl Columns {
    /// Empty columns for `dimension_count` dimensions.
    pub fn new(dimension_count: usize) -> Self {
        Columns::from_points(vec![Vec::new(); dimension_count], Vec::new())
    }

    fn from_points(dimensions: Vec<Vec<f64>>, values: Vec<f64>) -> Self {
        Columns {
            points: Arc::new(Points { dimensions, values }),
        }
    }

    /// Builds columns from whole arrays; every column must have as many entries as `values`.
    pub fn from_columns(
        dimensions: Vec<Vec<f64>>,
        values: Vec<f64>,
    ) -> Result<Self, (usize, usize)> {
        match dimensions.iter().find(|c| c.len() != values.len()) {
            Some(bad) => Err((bad.len(), values.len())),
            None => Ok(Columns::from_points(dimensions, values)),
        }
    }

    /// The points, to change (copied first if a clone shares them).
    fn points_mut(&mut self) -> &mut Points {
        Arc::make_mut(&mut self.points)
    }

    /// Appends one point; `coordinates` must have one entry per dimension.
    pub(crate) fn push(&mut self, coordinates: &[f64], value: f64) {
        let points = self.points_mut();
        for (column, &c) in points.dimensions.iter_mut().zip(coordinates) {
            column.push(c);
        }
        points.values.push(value);
    }

    /// Appends whole columns of equal length.
    pub(crate) fn extend(&mut self, dimensions: &[&[f64]], values: &[f64]) {
        let points = self.points_mut();
        for (column, new) in points.dimensions.iter_mut().zip(dimensions) {
            column.extend_from_slice(new);
        }
        points.values.extend_from_slice(values);
    }

    /// Reserves room for `additional` more points.
    pub(crate) fn reserve(&mut self, additional: usize) {
        let points = self.points_mut();
        for column in &mut points.dimensions {
            column.reserve(additional);
        }
        points.values.reserve(additional);
    }

    /// How many dimensions (coordinates per point).
    pub fn dimension_count(&self) -> usize {
        self.points.dimensions.len()
    }

    /// How many points.
    pub fn len(&self) -> usize {
        self.points.values.len()
    }

    /// Whether there are no points.
    pub fn is_empty(&self) -> bool {
        self.points.values.is_empty()
    }

    /// The column of dimension `index`.
    pub fn dimension(&self, index: usize) -> Option<&[f64]> {
        self.points.dimensions.get(index).map(Vec::as_slice)
    }

    /// The value column.
    pub fn values(&self) -> &[f64] {
        &self.points.values
    }

    /// The points as rows, `[d0, d1, …, value]`.
    pub fn rows(&self) -> impl ExactSizeIterator<Item = Vec<f64>> + '_ {
        (0..self.points.values.len()).map(move |i| self.row(i))
    }

    /// Point `i` as a row, `[d0, d1, …, value]` (empty past the end).
    pub(crate) fn row(&self, i: usize) -> Vec<f64> {
        let Some(&value) = self.points.values.get(i) else {
            return Vec::new();
        };
        let mut row: Vec<f64> = self
            .points
            .dimensions
            .iter()
            .filter_map(|c| c.get(i).copied())
            .collect();
        row.push(value);
        row
    }

    /// Serializes the points as OpenHTF does: a list of rows, without building the rows.
    pub(crate) fn serialize_rows<S: Serializer>(&self, serializer: S) -> Result<S::Ok, S::Error> {
        struct Row<'a>(&'a Columns, usize);
        impl serde::Serialize for Row<'_> {
            fn serialize<S: Serializer>(&self, serializer: S) -> Result<S::Ok, S::Error> {
                let Row(columns, i) = *self;
                let mut seq =
                    serializer.serialize_seq(Some(columns.points.dimensions.len() + 1))?;
                for column in &columns.points.dimensions {
                    seq.serialize_element(&JsonNumber(column[i]))?;
                }
                seq.serialize_element(&JsonNumber(columns.points.values[i]))?;
                seq.end()
            }
        }
        let mut seq = serializer.serialize_seq(Some(self.points.values.len()))?;
        for i in 0..self.points.values.len() {
            seq.serialize_element(&Row(self, i))?;
        }
        seq.end()
    }
}

/// A number written as OpenHTF writes it: NaN and infinities become the strings `"nan"`,
/// `"inf"` and `"-inf"`, since JSON has no such numbers.
#[derive(Debug, Clone, Copy)]
pub(crate) struct JsonNumber(pub(crate) f64);

impl serde::Serialize for JsonNumber {
    fn serialize<S: Serializer>(&self, serializer: S) -> Result<S::Ok, S::Error> {
        let v = self.0;
        if v.is_nan() {
            serializer.serialize_str("nan")
        } else if v == f64::INFINITY {
            serializer.serialize_str("inf")
        } else if v == f64::NEG_INFINITY {
            serializer.serialize_str("-inf")
        } else {
            serializer.serialize_f64(v)
        }
    }
}

impl serde::Serialize for Value {
    fn serialize<S: Serializer>(&self, serializer: S) -> Result<S::Ok, S::Error> {
        match self {
            Value::Number(v) => JsonNumber(*v).serialize(serializer),
            Value::Text(s) => serializer.serialize_str(s),
            Value::Bool(b) => serializer.serialize_bool(*b),
            Value::Json(j) => j.serialize(serializer),
            Value::Columns(c) => c.serialize_rows(serializer),
        }
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn columns_serialize_as_rows_in_insertion_order() {
        let mut c = Columns::new(2);
        c.push(&[0.0, 1.5], 10.0);
        c.push(&[0.1, f64::NAN], 11.0);
        let json = serde_json::to_string(&Value::Columns(c)).unwrap();
        assert_eq!(json, r#"[[0.0,1.5,10.0],[0.1,"nan",11.0]]"#);
    }

    #[test]
    fn clones_share_their_points_until_one_is_changed() {
        let mut original = Columns::new(1);
        original.extend(&[&[1.0, 2.0]], &[10.0, 20.0]);
        let mut copy = original.clone();
        // A record copied while an observer holds it doesn't copy a sweep.
        assert!(std::ptr::eq(original.values(), copy.values()));
        copy.push(&[3.0], 30.0);
        assert!(!std::ptr::eq(original.values(), copy.values()));
        assert_eq!(original.values(), [10.0, 20.0]);
        assert_eq!(copy.values(), [10.0, 20.0, 30.0]);
        assert_eq!(copy.dimension(0), Some(&[1.0, 2.0, 3.0][..]));
    }

    #[test]
    fn from_columns_rejects_unequal_lengths() {
        assert_eq!(
            Columns::from_columns(vec![vec![1.0, 2.0]], vec![1.0]),
            Err((2, 1))
        );
        let ok = Columns::from_columns(vec![vec![1.0], vec![2.0]], vec![3.0]).unwrap();
        assert_eq!(ok.rows().collect::<Vec<_>>(), vec![vec![1.0, 2.0, 3.0]]);
    }

    #[test]
    fn infinities_are_written_as_strings() {
        let json = serde_json::to_string(&[
            Value::Number(f64::INFINITY),
            Value::Number(f64::NEG_INFINITY),
        ])
        .unwrap();
        assert_eq!(json, r#"["inf","-inf"]"#);
    }
}
