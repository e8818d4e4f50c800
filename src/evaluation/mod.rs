//! Remote expert evaluation (远程异地评标, DESIGN §6), the parts that must be
//! recomputable by anyone from the record: the draw of the committee, the
//! price score, the aggregation of the panel's scores, qualification by
//! majority and the ranking; and the expert passes trading centres issue.
//!
//! Everything here is pure (no database, no clock): the service layer feeds it
//! what the record holds, and `kaibiao verify` feeds it what the transcript
//! holds, and both must get the same answer. The statements experts sign
//! and the report they sign are in [`statements`]. The exact arithmetic is specified
//! in `docs/PROTOCOL.md` §14.

pub mod draw;
pub mod pass;
pub mod scoring;
pub mod seed;
pub mod statements;
