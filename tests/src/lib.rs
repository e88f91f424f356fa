//! Black-box tests of bozor over HTTP live in `tests/`; this crate has no code of its own.
