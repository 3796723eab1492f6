//! One background task per profile, stopped with its session.
//!
//! Why: a plugin that starts work when a session starts (publishing keys, pinging
//! rooms) must stop it when the session ends — a profile deleted meanwhile must not
//! be written for — and must not run two of it when a session starts again before the
//! old task is over. Every such plugin kept the same map of abort handles.

use std::collections::HashMap;
use std::future::Future;
use std::sync::Mutex;

use tokio::task::AbortHandle;

/// Profile → its running task.
#[derive(Debug, Default)]
pub struct SessionTasks(Mutex<HashMap<String, AbortHandle>>);

impl SessionTasks {
    fn map(&self) -> std::sync::MutexGuard<'_, HashMap<String, AbortHandle>> {
        self.0.lock().unwrap_or_else(|e| e.into_inner())
    }

    /// Runs `task` for `profile`, stopping the one it had.
    pub fn start<F>(&self, profile: &str, task: F)
    where
        F: Future<Output = ()> + Send + 'static,
    {
        let handle = tokio::spawn(task).abort_handle();
        if let Some(old) = self.map().insert(profile.to_owned(), handle) {
            old.abort();
        }
    }

    /// Runs `task` for `profile` unless it has one running: for a task that ends by
    /// itself when it has nothing left to do ([`SessionTasks::finished`]), started
    /// again when there is.
    pub fn start_unless_running<F>(&self, profile: &str, task: F) -> bool
    where
        F: Future<Output = ()> + Send + 'static,
    {
        if self.is_running(profile) {
            return false;
        }
        self.map()
            .insert(profile.to_owned(), tokio::spawn(task).abort_handle());
        true
    }

    /// Called by `profile`'s task as it ends by itself: forgets it (unless another
    /// task took its place meanwhile).
    pub fn finished(&self, profile: &str) {
        let Some(me) = tokio::task::try_id() else {
            return;
        };
        let mut map = self.map();
        if map.get(profile).is_some_and(|h| h.id() == me) {
            map.remove(profile);
        }
    }

    /// Whether `profile` has a task running.
    pub fn is_running(&self, profile: &str) -> bool {
        self.map().get(profile).is_some_and(|h| !h.is_finished())
    }

    /// The profiles with a task, running or done (until [`SessionTasks::stop`]):
    /// those whose session started and has not ended.
    pub fn profiles(&self) -> Vec<String> {
        self.map().keys().cloned().collect()
    }

    /// Stops `profile`'s task, if it has one.
    pub fn stop(&self, profile: &str) {
        if let Some(task) = self.map().remove(profile) {
            task.abort();
        }
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[tokio::test]
    async fn a_new_task_stops_the_old_one_and_stop_stops_it() {
        let tasks = SessionTasks::default();
        let (tx1, rx1) = tokio::sync::oneshot::channel::<()>();
        tasks.start("p", async move {
            let _keep = tx1;
            std::future::pending::<()>().await;
        });
        let (tx2, rx2) = tokio::sync::oneshot::channel::<()>();
        tasks.start("p", async move {
            let _keep = tx2;
            std::future::pending::<()>().await;
        });
        assert!(rx1.await.is_err(), "the first task was dropped");
        tasks.stop("p");
        assert!(rx2.await.is_err(), "the second task was dropped");
        tasks.stop("nobody");
    }

    #[tokio::test]
    async fn a_task_that_ends_by_itself_can_start_again() {
        let tasks = std::sync::Arc::new(SessionTasks::default());
        let (tx, rx) = tokio::sync::oneshot::channel::<()>();
        let t = tasks.clone();
        assert!(tasks.start_unless_running("p", async move {
            let _ = rx.await;
            t.finished("p");
        }));
        // Running: a second one is not started.
        assert!(!tasks.start_unless_running("p", async {}));
        tx.send(()).unwrap();
        for _ in 0..100 {
            if tasks.map().is_empty() {
                break;
            }
            tokio::task::yield_now().await;
        }
        assert!(
            tasks.map().is_empty(),
            "the finished task was not forgotten"
        );
        assert!(tasks.start_unless_running("p", async {}));
    }
}
