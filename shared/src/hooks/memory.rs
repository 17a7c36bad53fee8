//! The hooks queue's twin: what was published, with its delay.

use std::sync::{Arc, Mutex};
use std::time::Duration;

use super::{HookMessage, HookQueue, HookQueueError};

#[derive(Clone, Default)]
pub struct MemoryHookQueue {
    published: Arc<Mutex<Vec<(HookMessage, Duration)>>>,
    failing: Arc<Mutex<bool>>,
}

impl MemoryHookQueue {
    pub fn new() -> Self {
        Self::default()
    }

    /// Takes everything published so far.
    pub fn drain(&self) -> Vec<(HookMessage, Duration)> {
        std::mem::take(&mut *self.published.lock().unwrap_or_else(|e| e.into_inner()))
    }

    /// Makes every publish fail (an SQS outage) until set back.
    pub fn set_failing(&self, failing: bool) {
        *self.failing.lock().unwrap_or_else(|e| e.into_inner()) = failing;
    }
}

impl HookQueue for MemoryHookQueue {
    async fn publish(&self, message: &HookMessage, delay: Duration) -> Result<(), HookQueueError> {
        if *self.failing.lock().unwrap_or_else(|e| e.into_inner()) {
            return Err(HookQueueError("the hooks queue is failing (twin)".into()));
        }
        self.published
            .lock()
            .unwrap_or_else(|e| e.into_inner())
            .push((message.clone(), delay));
        Ok(())
    }
}
