//! Collects every problem with an input so a client learns all of them at
//! once (a config file, a section's settings), instead of one per attempt.

use serde::Serialize;

#[derive(Debug, Clone, PartialEq, Eq, Serialize, utoipa::ToSchema)]
pub struct Problem {
    /// Dotted path of the offending field, e.g. `evaluation.items[2].max_points`.
    pub field: String,
    pub message: String,
}

#[derive(Debug, Default, Clone)]
pub struct Problems(Vec<Problem>);

impl Problems {
    pub fn new() -> Self {
        Self::default()
    }
    pub fn push(&mut self, field: impl Into<String>, message: impl Into<String>) {
        self.0.push(Problem {
            field: field.into(),
            message: message.into(),
        });
    }
    pub fn check(&mut self, ok: bool, field: impl Into<String>, message: impl Into<String>) {
        if !ok {
            self.push(field, message);
        }
    }
    pub fn is_empty(&self) -> bool {
        self.0.is_empty()
    }
    pub fn list(&self) -> &[Problem] {
        &self.0
    }
    pub fn into_vec(self) -> Vec<Problem> {
        self.0
    }
    /// `Ok(v)` when no problem was recorded.
    pub fn result<T>(self, v: T) -> Result<T, Vec<Problem>> {
        if self.0.is_empty() {
            Ok(v)
        } else {
            Err(self.0)
        }
    }
}
