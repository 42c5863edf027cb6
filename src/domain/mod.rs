//! Pure business types and rules: no I/O here.

pub mod kind;
pub mod money;
pub mod org;
