//! Backend connections kept between client sessions, per backend and
//! account. A session takes one when it first needs the backend (checked
//! with a ping) and gives it back when the client leaves; it is reset
//! (`COM_RESET_CONNECTION`: session variables, user variables, temporary
//! tables and the database dropped, an open transaction rolled back)
//! before it is kept, so the next session starts clean and replays its own
//! state on it. A connection whose transaction did not end cleanly is
//! never given back: it is closed, which rolls that transaction back.

use std::collections::HashMap;
use std::sync::{Arc, Mutex};

use mysql_async::prelude::Queryable;
use mysql_async::Conn;

/// Idle connections kept per backend and account.
const MAX_IDLE: usize = 16;

#[derive(Default)]
pub struct Pool {
    /// By (backend URL, user).
    idle: Mutex<HashMap<(String, String), Vec<Conn>>>,
}

impl Pool {
    /// An idle connection to `url` as `user` that still answers.
    pub async fn take(&self, url: &str, user: &str) -> Option<Conn> {
        loop {
            let conn = self
                .idle
                .lock()
                .ok()?
                .get_mut(&(url.to_string(), user.to_string()))?
                .pop();
            let mut conn = conn?;
            if conn.ping().await.is_ok() {
                return Some(conn);
            }
        }
    }

    /// Keep `conn` for the next session of `user` on `url`, reset first
    /// (in the background); closed when the reset fails or enough are
    /// kept.
    pub fn give_back(self: &Arc<Self>, url: String, user: String, mut conn: Conn) {
        let pool = Arc::clone(self);
        tokio::spawn(async move {
            if !matches!(conn.reset().await, Ok(true)) {
                let _ = conn.disconnect().await;
                return;
            }
            let extra = match pool.idle.lock() {
                Ok(mut idle) => {
                    let v = idle.entry((url, user)).or_default();
                    if v.len() < MAX_IDLE {
                        v.push(conn);
                        None
                    } else {
                        Some(conn)
                    }
                }
                Err(_) => Some(conn),
            };
            if let Some(c) = extra {
                let _ = c.disconnect().await;
            }
        });
    }
}
