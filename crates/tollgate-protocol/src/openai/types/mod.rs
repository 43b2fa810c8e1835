//! Typed OpenAI chat shapes, used where tollgate builds or reads bodies for translation.
//! Pass-through requests never go through these: they stay the client's JSON.

mod request;
mod response;

pub use request::*;
pub use response::*;
