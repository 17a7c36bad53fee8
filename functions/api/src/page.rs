//! Paging: `limit` (1 to 100, default 50) and an opaque `cursor`; answers carry
//! `next_cursor` (null on the last page).

use serde::Deserialize;
use shared::platform::{Continuation, Page};
use utoipa::IntoParams;

use crate::App;
use crate::problem::Problem;

pub const DEFAULT_LIMIT: u32 = 50;
pub const MAX_LIMIT: u32 = 100;

#[derive(Debug, Deserialize, IntoParams)]
#[into_params(parameter_in = Query)]
pub struct PageQuery {
    /// Items per page, 1 to 100 (default 50).
    #[param(minimum = 1, maximum = 100)]
    pub limit: Option<u32>,
    /// The `next_cursor` of the previous page.
    #[param(max_length = 2048)]
    pub cursor: Option<String>,
}

impl PageQuery {
    pub fn limit(&self) -> Result<i32, Problem> {
        match self.limit.unwrap_or(DEFAULT_LIMIT) {
            limit @ 1..=MAX_LIMIT => Ok(limit as i32),
            _ => Err(Problem::invalid(
                "/query/limit",
                format!("1 to {MAX_LIMIT}"),
            )),
        }
    }

    /// Where to resume, for the list `binding` names.
    pub fn start(&self, app: &App, binding: &str) -> Result<Option<Continuation>, Problem> {
        app.cursors.open(binding, self.cursor.as_deref(), app.now())
    }
}

/// The next cursor of a page, for the same list.
pub fn next_cursor<T>(app: &App, binding: &str, page: &Page<T>) -> Option<String> {
    app.cursors.seal(binding, page.next.clone(), app.now())
}
