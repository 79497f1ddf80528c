//! Tracking and cancelling the tasks a host spawns (guest instances, connections).

use std::future::Future;
use std::sync::Arc;

use tokio::sync::watch;
use tokio_util::sync::CancellationToken;

/// A set of spawned tasks that can be awaited until idle or cancelled all at once.
///
/// Cancelling drops each task's future at its next poll; for a guest that drops its wasmtime
/// `Store` mid-execution, which is how [`Host::kill`](crate::Host::kill) simulates a crash.
#[derive(Clone, Debug)]
pub(crate) struct TaskGroup {
    running: Arc<watch::Sender<usize>>,
    cancel: CancellationToken,
}

/// Decrements the running count when the task ends, however it ends.
struct Running(Arc<watch::Sender<usize>>);

impl Drop for Running {
    fn drop(&mut self) {
        self.0.send_modify(|n| *n -= 1);
    }
}

impl TaskGroup {
    pub fn new() -> Self {
        Self {
            running: Arc::new(watch::Sender::new(0)),
            cancel: CancellationToken::new(),
        }
    }

    /// Spawns `task` on the current tokio runtime; it is dropped unfinished if the group is
    /// cancelled. Returns `false` (and drops `task`) if the group was already cancelled.
    pub fn spawn(&self, task: impl Future<Output = ()> + Send + 'static) -> bool {
        if self.cancel.is_cancelled() {
            return false;
        }
        self.running.send_modify(|n| *n += 1);
        let running = Running(self.running.clone());
        let cancel = self.cancel.clone();
        tokio::spawn(async move {
            let _running = running;
            tokio::select! {
                biased;
                () = cancel.cancelled() => {}
                () = task => {}
            }
        });
        true
    }

    /// Waits until no task is running.
    pub async fn wait_idle(&self) {
        let mut rx = self.running.subscribe();
        // The sender lives in `self`, so `wait_for` cannot fail.
        let _ = rx.wait_for(|n| *n == 0).await;
    }

    /// Drops every running task at its next poll and refuses new ones.
    pub fn cancel(&self) {
        self.cancel.cancel();
    }
}

#[cfg(test)]
mod tests {
    use super::*;
    use std::time::Duration;

    #[tokio::test]
    async fn wait_idle_waits_for_running_tasks() {
        let group = TaskGroup::new();
        let (tx, rx) = tokio::sync::oneshot::channel();
        group.spawn(async move {
            tokio::time::sleep(Duration::from_millis(20)).await;
            let _ = tx.send(());
        });
        group.wait_idle().await;
        assert!(rx.await.is_ok());
    }

    #[tokio::test]
    async fn cancel_drops_unfinished_tasks() {
        let group = TaskGroup::new();
        let (tx, rx) = tokio::sync::oneshot::channel::<()>();
        group.spawn(async move {
            std::future::pending::<()>().await;
            let _ = tx.send(());
        });
        group.cancel();
        group.wait_idle().await;
        assert!(rx.await.is_err(), "the task was dropped, not completed");
        assert!(!group.spawn(async {}));
    }
}
