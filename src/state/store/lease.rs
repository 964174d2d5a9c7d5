//! Environment locks in a shared store: leases.
//!
//! A lock is the object `locks/<env>.json`, created only if absent (`If-None-Match: *`), that
//! names its holder (host, pid, run id, command, start) and when the lease expires. While the
//! run goes on, a thread renews every lease each third of the TTL with a compare-and-swap
//! (`If-Match` the version it wrote last), so a lease that another run took over can never be
//! renewed by accident. A lease past its expiry is stale: the next run takes it over, again
//! with `If-Match`, so of two runs racing for a stale lease exactly one wins.
//!
//! Expiry is judged by the clocks of the machines involved (the holder writes its expiry as a
//! Unix time): their clocks must agree to well within the TTL (NTP does).
//!
//! When a renewal fails and the lease could expire before the next attempt, or when another
//! run holds the lease, the lease is lost: [`Watch::lost`] says why, and the run starts no new
//! deployment.

use std::sync::atomic::{AtomicBool, Ordering};
use std::sync::{Arc, Mutex};
use std::time::{Duration, Instant, SystemTime, UNIX_EPOCH};

use serde::{Deserialize, Serialize};

use super::{lock_key, Cond, StateStore, StoreError, Version};
use crate::state::lock::Holder;

/// The default lease: long enough to ride out a slow store, short enough that a killed
/// runner blocks its environments only briefly. `BITOPS_LEASE_TTL` changes it.
pub const DEFAULT_TTL: Duration = Duration::from_secs(60);

/// What a lock object holds.
#[derive(Clone, Debug, Serialize, Deserialize, PartialEq)]
pub struct Lease {
    #[serde(flatten)]
    pub holder: Holder,
    /// Unix milliseconds after which the lease is stale.
    pub expires_ms: u64,
    pub ttl_ms: u64,
}

impl Lease {
    /// When the holder started (its `started` text), if readable.
    pub fn holder_start(&self) -> Option<SystemTime> {
        crate::report::run_report::parse_time(&self.holder.started)
    }

    pub fn remaining(&self) -> Option<Duration> {
        let now = now_ms();
        (self.expires_ms > now).then(|| Duration::from_millis(self.expires_ms - now))
    }
}

pub fn now_ms() -> u64 {
    SystemTime::now()
        .duration_since(UNIX_EPOCH)
        .unwrap_or_default()
        .as_millis() as u64
}

#[derive(Debug)]
pub enum LeaseError {
    /// Another run holds a live lease.
    Held {
        env: String,
        holder: Holder,
        expires_in: Duration,
    },
    /// The store did not answer or refused the write.
    Store { env: String, error: String },
}

impl std::fmt::Display for LeaseError {
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        match self {
            LeaseError::Held {
                env,
                holder,
                expires_in,
            } => write!(
                f,
                "environment `{env}` is being deployed by another run: {} (its lease is renewed while it runs; if that run died, the lease expires in {}s)",
                holder.describe(),
                expires_in.as_secs().max(1)
            ),
            LeaseError::Store { env, error } => {
                write!(f, "cannot lock environment `{env}` in the state store: {error}")
            }
        }
    }
}

/// Whether the run still holds its leases.
/// Called once, with the reason, when the leases are lost.
pub type Notify = Box<dyn Fn(&str) + Send + Sync>;

#[derive(Default)]
pub struct Watch {
    lost: AtomicBool,
    why: Mutex<Option<String>>,
    /// Told once, the moment the leases are lost (the app prints it).
    notify: Option<Notify>,
}

impl std::fmt::Debug for Watch {
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        write!(f, "Watch(lost: {:?})", self.lost())
    }
}

impl Watch {
    /// Why the leases were lost, once they are.
    pub fn lost(&self) -> Option<String> {
        if !self.lost.load(Ordering::Acquire) {
            return None;
        }
        self.why.lock().ok().and_then(|w| w.clone())
    }

    fn lose(&self, why: String) {
        if let Ok(mut w) = self.why.lock() {
            w.get_or_insert(why.clone());
        }
        if !self.lost.swap(true, Ordering::AcqRel) {
            if let Some(n) = &self.notify {
                n(&why);
            }
        }
    }
}

/// Leases held by this run, renewed until dropped; dropping releases them.
pub struct Leases {
    pub watch: Arc<Watch>,
    stop: Option<std::sync::mpsc::Sender<()>>,
    renewer: Option<std::thread::JoinHandle<()>>,
    held: Arc<Mutex<Vec<(String, Version)>>>,
    store: Arc<dyn StateStore>,
    me: Holder,
}

/// Takes the lease of every environment, all or none. With `wait`, a live lease is retried
/// until the time is up.
pub fn acquire(
    store: &Arc<dyn StateStore>,
    envs: &[String],
    me: &Holder,
    ttl: Duration,
    wait: Option<Duration>,
    notify: Option<Notify>,
) -> Result<Leases, LeaseError> {
    let mut leases = Leases {
        watch: Arc::new(Watch {
            notify,
            ..Watch::default()
        }),
        stop: None,
        renewer: None,
        held: Arc::new(Mutex::new(Vec::new())),
        store: Arc::clone(store),
        me: me.clone(),
    };
    let until = wait.map(|w| Instant::now() + w);
    for env in envs {
        let version = take(store.as_ref(), env, me, ttl, until)?;
        leases
            .held
            .lock()
            .expect("lease list")
            .push((env.clone(), version));
    }
    leases.start_renewing(ttl);
    Ok(leases)
}

fn lease_bytes(me: &Holder, ttl: Duration) -> Vec<u8> {
    let l = Lease {
        holder: me.clone(),
        expires_ms: now_ms() + ttl.as_millis() as u64,
        ttl_ms: ttl.as_millis() as u64,
    };
    serde_json::to_vec_pretty(&l).expect("lease serializes")
}

/// Reads a lock object; an unreadable one is described rather than trusted.
pub fn read(store: &dyn StateStore, env: &str) -> Result<Option<(Lease, Version)>, StoreError> {
    Ok(store.get(&lock_key(env))?.map(|o| {
        let lease = serde_json::from_slice::<Lease>(&o.data).unwrap_or_else(|_| Lease {
            holder: Holder {
                pid: 0,
                host: "unknown".into(),
                started: "unknown".into(),
                command: "unreadable lock object".into(),
                run_id: "unknown".into(),
                start_time: None,
                boot_id: None,
            },
            // Unreadable: treat as live for one default TTL from now, never as free.
            expires_ms: now_ms() + DEFAULT_TTL.as_millis() as u64,
            ttl_ms: DEFAULT_TTL.as_millis() as u64,
        });
        (lease, o.version)
    }))
}

fn take(
    store: &dyn StateStore,
    env: &str,
    me: &Holder,
    ttl: Duration,
    until: Option<Instant>,
) -> Result<Version, LeaseError> {
    let key = lock_key(env);
    let store_err = |e: StoreError| LeaseError::Store {
        env: env.to_string(),
        error: format!("{}: {e}", store.url()),
    };
    loop {
        match store.put(&key, lease_bytes(me, ttl), Cond::Create) {
            Ok(v) => return Ok(v),
            Err(StoreError::Exists { .. }) => {}
            Err(e) => return Err(store_err(e)),
        }
        let Some((lease, version)) = read(store, env).map_err(store_err)? else {
            continue; // released between our two calls: try again
        };
        match lease.remaining() {
            None => {
                // Stale: take it over, unless another run does so first.
                match store.put(&key, lease_bytes(me, ttl), Cond::Matches(version)) {
                    Ok(v) => return Ok(v),
                    Err(StoreError::Changed { .. } | StoreError::Exists { .. }) => continue,
                    Err(e) => return Err(store_err(e)),
                }
            }
            Some(left) => match until {
                Some(t) if Instant::now() < t => std::thread::sleep(Duration::from_millis(250)),
                _ => {
                    return Err(LeaseError::Held {
                        env: env.to_string(),
                        holder: lease.holder,
                        expires_in: left,
                    })
                }
            },
        }
    }
}

impl Leases {
    fn start_renewing(&mut self, ttl: Duration) {
        let (tx, rx) = std::sync::mpsc::channel::<()>();
        let every = ttl / 3;
        let held = Arc::clone(&self.held);
        let store = Arc::clone(&self.store);
        let watch = Arc::clone(&self.watch);
        let me = self.me.clone();
        let handle = std::thread::Builder::new()
            .name("bitops-lease".into())
            .spawn(move || {
                let mut renewed = Instant::now();
                loop {
                    match rx.recv_timeout(every) {
                        Err(std::sync::mpsc::RecvTimeoutError::Timeout) => {}
                        _ => return, // stopped
                    }
                    let mut ok = true;
                    for (env, version) in held.lock().expect("lease list").iter_mut() {
                        match store.put(
                            &lock_key(env),
                            lease_bytes(&me, ttl),
                            Cond::Matches(version.clone()),
                        ) {
                            Ok(v) => *version = v,
                            Err(StoreError::Changed { .. } | StoreError::Exists { .. }) => {
                                let by = read(store.as_ref(), env)
                                    .ok()
                                    .flatten()
                                    .map(|(l, _)| format!(" by {}", l.holder.describe()))
                                    .unwrap_or_default();
                                watch.lose(format!(
                                    "the lock of environment `{env}` was taken over{by}"
                                ));
                                return;
                            }
                            Err(e) => {
                                ok = false;
                                // Another attempt comes in a third of the TTL; if the lease
                                // could expire before it, it is as good as lost.
                                if renewed.elapsed() + every >= ttl {
                                    watch.lose(format!(
                                        "the lock of environment `{env}` could not be renewed in {}: {e}",
                                        store.url()
                                    ));
                                    return;
                                }
                            }
                        }
                    }
                    if ok {
                        renewed = Instant::now();
                    }
                }
            })
            .ok();
        self.stop = Some(tx);
        self.renewer = handle;
    }
}

impl Leases {
    /// As if this process were killed: renewing stops and nothing is released.
    #[cfg(test)]
    fn abandon(mut self) {
        drop(self.stop.take());
        if let Some(h) = self.renewer.take() {
            let _ = h.join();
        }
        self.held.lock().expect("lease list").clear();
    }
}

impl Drop for Leases {
    fn drop(&mut self) {
        drop(self.stop.take());
        if let Some(h) = self.renewer.take() {
            let _ = h.join();
        }
        // Release only what is still ours: a lease taken over after it expired belongs to
        // the run that took it.
        for (env, _) in self.held.lock().expect("lease list").iter() {
            if let Ok(Some((lease, _))) = read(self.store.as_ref(), env) {
                if lease.holder.run_id == self.me.run_id && lease.holder.host == self.me.host {
                    let _ = self.store.delete(&lock_key(env));
                }
            }
        }
    }
}

/// The lease TTL: `BITOPS_LEASE_TTL` (a duration: `90s`, `2m`), else [`DEFAULT_TTL`].
pub fn ttl_from_env(env: &crate::config::settings::EnvVars) -> Result<Duration, String> {
    match env.get("BITOPS_LEASE_TTL").filter(|v| !v.is_empty()) {
        None => Ok(DEFAULT_TTL),
        Some(v) => match humantime::parse_duration(v) {
            Ok(d) if d >= Duration::from_secs(1) => Ok(d),
            Ok(_) => Err(format!("BITOPS_LEASE_TTL={v}: at least 1s")),
            Err(e) => Err(format!("BITOPS_LEASE_TTL={v}: {e}")),
        },
    }
}

#[cfg(test)]
mod tests {
    use super::*;
    use crate::state::store::folder::FolderStore;

    fn me(run: &str) -> Holder {
        Holder {
            pid: std::process::id(),
            host: crate::state::lock::hostname(),
            started: "now".into(),
            command: "bitops deploy".into(),
            run_id: run.into(),
            start_time: None,
            boot_id: None,
        }
    }

    #[test]
    fn one_holder_then_expiry_then_takeover() {
        let t = tempfile::tempdir().unwrap();
        let store: Arc<dyn StateStore> = Arc::new(FolderStore::new(t.path(), "file://t"));
        let envs = vec!["a".to_string()];
        let first = acquire(&store, &envs, &me("r1"), Duration::from_secs(3), None, None).unwrap();
        match acquire(&store, &envs, &me("r2"), Duration::from_secs(3), None, None) {
            Err(LeaseError::Held { holder, .. }) => assert_eq!(holder.run_id, "r1"),
            Err(e) => panic!("expected Held, got {e}"),
            Ok(_) => panic!("expected Held, got a lease"),
        }
        // A holder that stops renewing (killed).
        first.abandon();
        let (lease, _) = read(store.as_ref(), "a").unwrap().unwrap();
        let wait = lease.remaining().unwrap_or_default() + Duration::from_millis(50);
        std::thread::sleep(wait);
        let second = acquire(&store, &envs, &me("r2"), Duration::from_secs(3), None, None).unwrap();
        assert_eq!(
            read(store.as_ref(), "a").unwrap().unwrap().0.holder.run_id,
            "r2"
        );
        drop(second);
        assert!(read(store.as_ref(), "a").unwrap().is_none());
    }

    /// A folder store that can be made to fail every call (a store gone unreachable).
    struct Flaky(FolderStore, AtomicBool);

    impl StateStore for Flaky {
        fn url(&self) -> &str {
            self.0.url()
        }
        fn get(&self, key: &str) -> Result<Option<super::super::Object>, StoreError> {
            self.check()?;
            self.0.get(key)
        }
        fn put(&self, key: &str, data: Vec<u8>, cond: Cond) -> Result<Version, StoreError> {
            self.check()?;
            self.0.put(key, data, cond)
        }
        fn delete(&self, key: &str) -> Result<(), StoreError> {
            self.check()?;
            self.0.delete(key)
        }
        fn list(&self, prefix: &str) -> Result<Vec<super::super::Listed>, StoreError> {
            self.check()?;
            self.0.list(prefix)
        }
    }

    impl Flaky {
        fn check(&self) -> Result<(), StoreError> {
            if self.1.load(Ordering::SeqCst) {
                Err(StoreError::Failed("connection refused".into()))
            } else {
                Ok(())
            }
        }
    }

    #[test]
    fn renewals_that_keep_failing_lose_the_lease_before_it_expires() {
        let t = tempfile::tempdir().unwrap();
        let flaky = Arc::new(Flaky(
            FolderStore::new(t.path(), "file://t"),
            AtomicBool::new(false),
        ));
        let store: Arc<dyn StateStore> = Arc::clone(&flaky) as Arc<dyn StateStore>;
        let held = acquire(
            &store,
            &["a".to_string()],
            &me("r1"),
            Duration::from_secs(3),
            None,
            None,
        )
        .unwrap();
        flaky.1.store(true, Ordering::SeqCst);
        let t0 = Instant::now();
        while held.watch.lost().is_none() && t0.elapsed() < Duration::from_secs(10) {
            std::thread::sleep(Duration::from_millis(50));
        }
        let why = held.watch.lost().expect("lost");
        assert!(
            why.contains("could not be renewed") && why.contains("connection refused"),
            "{why}"
        );
    }

    #[test]
    fn a_lease_taken_over_is_reported_lost() {
        let t = tempfile::tempdir().unwrap();
        let store: Arc<dyn StateStore> = Arc::new(FolderStore::new(t.path(), "file://t"));
        let envs = vec!["a".to_string()];
        let held = acquire(&store, &envs, &me("r1"), Duration::from_secs(3), None, None).unwrap();
        store
            .put(
                &lock_key("a"),
                lease_bytes(&me("intruder"), DEFAULT_TTL),
                Cond::Overwrite,
            )
            .unwrap();
        let t0 = Instant::now();
        while held.watch.lost().is_none() && t0.elapsed() < Duration::from_secs(10) {
            std::thread::sleep(Duration::from_millis(50));
        }
        assert!(held.watch.lost().unwrap().contains("taken over"));
        drop(held);
        assert_eq!(
            read(store.as_ref(), "a").unwrap().unwrap().0.holder.run_id,
            "intruder",
            "a lost lease is not released: it is no longer ours"
        );
    }
}
