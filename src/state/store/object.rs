//! A state store in object storage (S3 and S3-compatible stores, Azure Blob), through the
//! `object_store` crate.
//!
//! Credentials and endpoints come from each cloud's standard variables, read from the
//! environment bitops was given: `AWS_*` (`AWS_ACCESS_KEY_ID`, `AWS_SECRET_ACCESS_KEY`,
//! `AWS_SESSION_TOKEN`, `AWS_REGION`, `AWS_ENDPOINT_URL`, …) and `AZURE_*`
//! (`AZURE_STORAGE_ACCOUNT_NAME`, `AZURE_STORAGE_ACCOUNT_KEY`, `AZURE_STORAGE_ENDPOINT`,
//! `AZURE_STORAGE_USE_EMULATOR` with `AZURITE_BLOB_STORAGE_URL` for Azurite). Plain `http://`
//! is refused unless the endpoint that names it was given explicitly.
//!
//! bitops' callers are synchronous (and some run inside the deployment runtime), so the store
//! owns a small runtime of its own and each call waits for its answer on a channel. Every
//! call is bounded: connect and request timeouts, few retries, and a hard cap per call, so an
//! unreachable store is reported within seconds rather than after the crate's default
//! three-minute retry budget.

use std::sync::Arc;
use std::time::Duration;

use object_store::path::Path as ObjPath;
use object_store::{
    BackoffConfig, ClientOptions, ObjectStore, ObjectStoreExt, PutMode, PutOptions, PutPayload,
    RetryConfig, UpdateVersion,
};

use super::choose::StoreUrl;
use super::{Cond, Listed, Object, StateStore, StoreError, Version};
use crate::config::settings::EnvVars;

/// The longest one call may take, retries included.
const CALL_CAP: Duration = Duration::from_secs(25);

pub struct ObjectBackend {
    store: Arc<dyn ObjectStore>,
    prefix: String,
    url: String,
    runtime: tokio::runtime::Runtime,
}

fn client_options(allow_http: bool) -> ClientOptions {
    ClientOptions::new()
        .with_connect_timeout(Duration::from_secs(5))
        .with_timeout(Duration::from_secs(15))
        .with_allow_http(allow_http)
}

fn retry() -> RetryConfig {
    RetryConfig {
        backoff: BackoffConfig {
            init_backoff: Duration::from_millis(100),
            max_backoff: Duration::from_secs(2),
            base: 2.0,
        },
        max_retries: 2,
        retry_timeout: Duration::from_secs(10),
    }
}

/// The first of these variables that is set, with its name.
fn first<'a>(env: &'a EnvVars, names: &[&'a str]) -> Option<(&'a str, &'a str)> {
    names
        .iter()
        .find_map(|n| env.get(n).filter(|v| !v.is_empty()).map(|v| (*n, v)))
}

impl ObjectBackend {
    pub fn open(url: &StoreUrl, env: &EnvVars) -> Result<Self, String> {
        // reqwest is built without a default TLS provider; ring is the one compiled in.
        let _ = rustls::crypto::ring::default_provider().install_default();
        let (store, prefix): (Arc<dyn ObjectStore>, &str) = match url {
            StoreUrl::S3 { bucket, prefix, .. } => {
                let mut b = object_store::aws::AmazonS3Builder::new();
                for (k, v) in env.0.iter().filter(|(k, _)| k.starts_with("AWS_")) {
                    if let Ok(key) = k.to_ascii_lowercase().parse() {
                        b = b.with_config(key, v);
                    }
                }
                let endpoint = first(
                    env,
                    &["AWS_ENDPOINT_URL_S3", "AWS_ENDPOINT_URL", "AWS_ENDPOINT"],
                );
                if let Some((_, e)) = endpoint {
                    // Path-style addressing: what S3-compatible servers (MinIO, moto) expect.
                    b = b.with_endpoint(e).with_virtual_hosted_style_request(false);
                }
                if env.get("AWS_REGION").is_none() && env.get("AWS_DEFAULT_REGION").is_some() {
                    b = b.with_region(env.get("AWS_DEFAULT_REGION").unwrap_or_default());
                }
                let allow_http = endpoint.is_some_and(|(_, e)| e.starts_with("http://"))
                    || env.get("AWS_ALLOW_HTTP") == Some("true");
                let s = b
                    .with_bucket_name(bucket)
                    .with_client_options(client_options(allow_http))
                    .with_retry(retry())
                    .build()
                    .map_err(|e| format!("{}: {e}", url.text()))?;
                (Arc::new(s), prefix)
            }
            StoreUrl::Azure {
                container, prefix, ..
            } => {
                let mut b = object_store::azure::MicrosoftAzureBuilder::new();
                for (k, v) in env.0.iter().filter(|(k, _)| k.starts_with("AZURE_")) {
                    if let Ok(key) = k.to_ascii_lowercase().parse() {
                        b = b.with_config(key, v);
                    }
                }
                let endpoint = first(env, &["AZURE_STORAGE_ENDPOINT", "AZURE_ENDPOINT"]);
                // The emulator (Azurite) speaks http; asking for it names it explicitly.
                let allow_http = endpoint.is_some_and(|(_, e)| e.starts_with("http://"))
                    || env.get("AZURE_ALLOW_HTTP") == Some("true");
                let s = b
                    .with_container_name(container)
                    .with_client_options(client_options(allow_http))
                    .with_retry(retry())
                    .build()
                    .map_err(|e| format!("{}: {e}", url.text()))?;
                (Arc::new(s), prefix)
            }
            StoreUrl::Folder { .. } => unreachable!("folders are opened by folder.rs"),
        };
        let runtime = tokio::runtime::Builder::new_multi_thread()
            .worker_threads(1)
            .thread_name("bitops-state")
            .enable_all()
            .build()
            .map_err(|e| format!("cannot start the state store's runtime: {e}"))?;
        Ok(ObjectBackend {
            store,
            prefix: prefix.to_string(),
            url: url.text().to_string(),
            runtime,
        })
    }

    fn path(&self, key: &str) -> ObjPath {
        if self.prefix.is_empty() {
            ObjPath::from(key)
        } else {
            ObjPath::from(format!("{}/{key}", self.prefix))
        }
    }

    /// Runs a store call on the store's runtime and waits for it (from any thread, inside
    /// another runtime or not), at most [`CALL_CAP`].
    fn call<T: Send + 'static>(
        &self,
        f: impl std::future::Future<Output = Result<T, object_store::Error>> + Send + 'static,
    ) -> Result<T, object_store::Error> {
        let (tx, rx) = std::sync::mpsc::channel();
        self.runtime.spawn(async move {
            let r = match tokio::time::timeout(CALL_CAP, f).await {
                Ok(r) => r,
                Err(_) => Err(object_store::Error::Generic {
                    store: "state",
                    source: format!("no answer within {}s", CALL_CAP.as_secs()).into(),
                }),
            };
            let _ = tx.send(r);
        });
        rx.recv().unwrap_or_else(|_| {
            Err(object_store::Error::Generic {
                store: "state",
                source: "the state store's runtime stopped".into(),
            })
        })
    }

    fn fail(&self, e: object_store::Error) -> StoreError {
        StoreError::Failed(describe(&e))
    }
}

/// An error with its causes: object_store's top line alone often hides the real reason
/// (connection refused, 403 …).
fn describe(e: &dyn std::error::Error) -> String {
    let mut s = e.to_string();
    let mut src = e.source();
    while let Some(c) = src {
        let t = c.to_string();
        if !s.contains(&t) {
            s.push_str(": ");
            s.push_str(&t);
        }
        src = c.source();
    }
    s
}

impl StateStore for ObjectBackend {
    fn url(&self) -> &str {
        &self.url
    }

    fn get(&self, key: &str) -> Result<Option<Object>, StoreError> {
        let store = Arc::clone(&self.store);
        let path = self.path(key);
        let r = self.call(async move {
            let got = store.get(&path).await?;
            let version = Version {
                e_tag: got.meta.e_tag.clone(),
                version: got.meta.version.clone(),
            };
            let data = got.bytes().await?;
            Ok(Object {
                data: data.to_vec(),
                version,
            })
        });
        match r {
            Ok(o) => Ok(Some(o)),
            Err(object_store::Error::NotFound { .. }) => Ok(None),
            Err(e) => Err(self.fail(e)),
        }
    }

    fn put(&self, key: &str, data: Vec<u8>, cond: Cond) -> Result<Version, StoreError> {
        let store = Arc::clone(&self.store);
        let path = self.path(key);
        let mode = match cond {
            Cond::Overwrite => PutMode::Overwrite,
            Cond::Create => PutMode::Create,
            Cond::Matches(v) => PutMode::Update(UpdateVersion {
                e_tag: v.e_tag,
                version: v.version,
            }),
        };
        let r = self.call(async move {
            store
                .put_opts(&path, PutPayload::from(data), PutOptions::from(mode))
                .await
        });
        match r {
            Ok(p) => Ok(Version {
                e_tag: p.e_tag,
                version: p.version,
            }),
            Err(object_store::Error::AlreadyExists { .. }) => {
                Err(StoreError::Exists { key: key.into() })
            }
            Err(
                object_store::Error::Precondition { .. } | object_store::Error::NotFound { .. },
            ) => Err(StoreError::Changed { key: key.into() }),
            Err(e) => Err(self.fail(e)),
        }
    }

    fn delete(&self, key: &str) -> Result<(), StoreError> {
        let store = Arc::clone(&self.store);
        let path = self.path(key);
        match self.call(async move { store.delete(&path).await }) {
            Ok(()) | Err(object_store::Error::NotFound { .. }) => Ok(()),
            Err(e) => Err(self.fail(e)),
        }
    }

    fn list(&self, prefix: &str) -> Result<Vec<Listed>, StoreError> {
        use futures_util::TryStreamExt;
        let store = Arc::clone(&self.store);
        // Listing is by whole path segments: list the folder part, filter the rest.
        let (dir, _) = prefix.rsplit_once('/').unwrap_or(("", prefix));
        let base = if self.prefix.is_empty() {
            dir.to_string()
        } else if dir.is_empty() {
            self.prefix.clone()
        } else {
            format!("{}/{dir}", self.prefix)
        };
        let strip = if self.prefix.is_empty() {
            String::new()
        } else {
            format!("{}/", self.prefix)
        };
        let metas = self.call(async move {
            let p = (!base.is_empty()).then(|| ObjPath::from(base));
            store.list(p.as_ref()).try_collect::<Vec<_>>().await
        });
        let metas = metas.map_err(|e| self.fail(e))?;
        let mut out: Vec<Listed> = metas
            .into_iter()
            .filter_map(|m| {
                let key = m
                    .location
                    .as_ref()
                    .strip_prefix(strip.as_str())?
                    .to_string();
                key.starts_with(prefix).then(|| Listed {
                    key,
                    modified: u64::try_from(m.last_modified.timestamp())
                        .ok()
                        .map(|s| std::time::UNIX_EPOCH + Duration::from_secs(s)),
                })
            })
            .collect();
        out.sort_by(|a, b| a.key.cmp(&b.key));
        Ok(out)
    }
}
