//! Deleting idle clients' state: the store has no expiry.

use super::state::{State, unfinished_only};
use crate::keys;
use crate::kv::{CREATED_SUFFIX, KvError};
use crate::problem::Error;
use crate::runtime::Ctx;

/// How many clients' state one sweep reads at most, to bound a request's
/// work; the rest wait for the next sweep.
pub const CLIENTS_PER_SWEEP: usize = 256;

/// Deletes the state of every idle client (bucket full, no unfinished job)
/// among the first [`CLIENTS_PER_SWEEP`], and creation counters left
/// without their state (a creation whose write failed); returns how many
/// clients' state it deleted. The caller runs it once a minute across
/// every instance (`http::maintain`).
pub fn sweep(ctx: &Ctx<'_>) -> Result<usize, Error> {
    let now = ctx.runtime.now();
    let listed = ctx.kv.keys_starting_with(keys::CLIENT_PREFIX)?;
    let mut deleted = 0;
    for key in listed.iter().take(CLIENTS_PER_SWEEP) {
        let swept = match key.strip_suffix(CREATED_SUFFIX) {
            Some(state) if !listed.iter().any(|k| k == state) => {
                ctx.kv.delete(key).map_err(Error::from).map(|()| false)
            }
            Some(_) => Ok(false),
            None => close_if_idle(ctx, key, now),
        };
        match swept {
            Ok(true) => deleted += 1,
            Ok(false) => {}
            Err(err) => ctx
                .runtime
                .log(&format!("sweeping client state {key} failed: {err}")),
        }
    }
    Ok(deleted)
}

/// Deletes `key`'s state if its client is idle. The state is first closed
/// by compare-and-swap, so a submission that read it before cannot write
/// it back, and one that reads it after waits for the deletion.
fn close_if_idle(ctx: &Ctx<'_>, key: &str, now: crate::Timestamp) -> Result<bool, Error> {
    let Some(raw) = ctx.kv.get(key)? else {
        return Ok(false);
    };
    let mut state = State::decode(&raw);
    if state.closed_at.is_some() {
        return Ok(false);
    }
    unfinished_only(ctx, &mut state.jobs, now)?;
    if !state.is_idle(now) {
        return Ok(false);
    }
    let closed = State {
        closed_at: Some(now.0),
        ..State::default()
    };
    if !ctx.kv.compare_and_swap(key, &raw, &closed.encode()?)? {
        return Ok(false);
    }
    delete(ctx, key)?;
    Ok(true)
}

/// The creation counter goes first: a submission that finds the state
/// gone then creates it afresh, rather than waiting on a counter that says
/// someone else is creating it.
fn delete(ctx: &Ctx<'_>, key: &str) -> Result<(), KvError> {
    ctx.kv.delete(&format!("{key}{CREATED_SUFFIX}"))?;
    ctx.kv.delete(key)
}
