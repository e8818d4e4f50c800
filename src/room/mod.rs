//! The opening room (不见面开标, DESIGN §5): one live WebSocket room per
//! section. [`state`] is the room as a fold of the section's events and its
//! role-filtered views; [`hub`] keeps the live rooms of this node in step
//! with the database and fans each event out to the watchers. The socket
//! itself is in `crate::http::room`.

pub mod hub;
pub mod state;
