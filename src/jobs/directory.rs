//! `directory_sync`: the directory brought in line with its source.

use crate::service::directory::{self, SyncError, SyncReport};
use crate::state::AppState;

pub async fn sync(state: &AppState) -> Result<SyncReport, SyncError> {
    directory::sync(&state.db, &state.client, &state.settings(), state.clock.as_ref()).await
}
