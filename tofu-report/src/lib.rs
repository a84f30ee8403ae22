//! HTML reports of run records (being written).
