//! Transport code shared by the front doors, below the protocol they speak.
//!
//! - `h2_authority_rewriter`: accepts gRPC clients on a unix socket that send the
//!   socket's path as HTTP/2 `:authority` (crictl and critest 1.26, older kubelets).

pub mod h2_authority_rewriter;
