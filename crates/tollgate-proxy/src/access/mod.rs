//! Virtual keys on the request path: the in-memory directory, admission against limits and
//! budgets, and the rate limiters behind them.

pub mod admission;
pub mod directory;
pub mod estimate;
pub mod keys;
pub mod limits;
pub mod snapshot;

pub use admission::{Access, Admitted, model_allowed};
pub use directory::{Directory, KeyEntry, Source, TeamEntry, UserEntry};
