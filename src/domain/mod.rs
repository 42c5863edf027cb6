//! Pure business types and rules: no I/O here, and no configuration types (what the
//! configuration holds is parsed into the types defined here).

pub mod adjustments;
pub mod contacts;
pub mod contest;
pub mod directory;
pub mod kind;
pub mod lookalike;
pub mod money;
pub mod month;
pub mod names;
pub mod org;
pub mod record;
pub mod rewards;
pub mod text;
