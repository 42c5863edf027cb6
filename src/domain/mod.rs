//! Pure business types and rules: no I/O here.

pub mod contacts;
pub mod contest;
pub mod directory;
pub mod kind;
pub mod money;
pub mod org;
pub mod record;
pub mod rewards;
pub mod text;
