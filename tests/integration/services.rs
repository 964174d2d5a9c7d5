//! Local services the tests talk to (moto's S3, Azurite), each on a free 127.0.0.1 port and
//! stopped when its handle is dropped. Shared by the state store and the CI-engine tests.

use std::net::{TcpListener, TcpStream};
use std::process::{Child, Command, Stdio};
use std::time::Duration;

use crate::harness::{poll, require_tools};

/// A running service process, killed (and reaped) on drop.
pub(crate) struct Service(Child);

impl Drop for Service {
    fn drop(&mut self) {
        let _ = self.0.kill();
        let _ = self.0.wait();
    }
}

pub(crate) fn free_port() -> u16 {
    TcpListener::bind("127.0.0.1:0")
        .expect("bind")
        .local_addr()
        .expect("addr")
        .port()
}

/// Starts `command` and waits until it accepts connections on `port`.
pub(crate) fn start(mut command: Command, port: u16, what: &str) -> Service {
    let child = command
        .stdout(Stdio::null())
        .stderr(Stdio::null())
        .spawn()
        .unwrap_or_else(|e| panic!("{what} starts: {e}"));
    let mut service = Service(child);
    poll(Duration::from_secs(60), what, || {
        if let Ok(Some(s)) = service.0.try_wait() {
            panic!("{what} exited early: {s}");
        }
        TcpStream::connect(("127.0.0.1", port)).ok()
    });
    service
}

/// moto's S3 with `bucket` created, and the variables that reach it (`None`: not installed,
/// skipped locally; under `CI` a missing tool fails).
pub(crate) fn moto_s3(bucket: &str) -> Option<(Service, Vec<(String, String)>)> {
    if !require_tools(&["moto_server", "python3"]) {
        return None;
    }
    let port = free_port();
    let mut command = Command::new("moto_server");
    command.args(["-H", "127.0.0.1", "-p", &port.to_string()]);
    let service = start(command, port, "moto_server");
    let endpoint = format!("http://127.0.0.1:{port}");
    let made = Command::new("python3")
        .args([
            "-c",
            "import sys, boto3; boto3.client('s3', endpoint_url=sys.argv[1], region_name='us-east-1', aws_access_key_id='test', aws_secret_access_key='test').create_bucket(Bucket=sys.argv[2])",
            &endpoint,
            bucket,
        ])
        .status()
        .expect("python3 runs");
    assert!(made.success(), "creating the bucket on moto failed");
    let vars = [
        ("AWS_ENDPOINT_URL", endpoint.as_str()),
        ("AWS_ACCESS_KEY_ID", "test"),
        ("AWS_SECRET_ACCESS_KEY", "test"),
        ("AWS_REGION", "us-east-1"),
    ];
    Some((
        service,
        vars.iter()
            .map(|(k, v)| (k.to_string(), v.to_string()))
            .collect(),
    ))
}

/// The keys under `prefix` in a moto bucket, sorted.
pub(crate) fn s3_keys(vars: &[(String, String)], bucket: &str, prefix: &str) -> Vec<String> {
    let out = Command::new("python3")
        .args([
            "-c",
            "import sys, boto3\n\
             c = boto3.client('s3')\n\
             for p in c.get_paginator('list_objects_v2').paginate(Bucket=sys.argv[1], Prefix=sys.argv[2]):\n\
             \x20   for o in p.get('Contents', []): print(o['Key'])",
            bucket,
            prefix,
        ])
        .envs(vars.iter().map(|(k, v)| (k, v)))
        .output()
        .expect("python3 runs");
    assert!(
        out.status.success(),
        "listing the bucket failed: {}",
        String::from_utf8_lossy(&out.stderr)
    );
    let mut keys: Vec<String> = String::from_utf8_lossy(&out.stdout)
        .lines()
        .map(str::to_string)
        .collect();
    keys.sort();
    keys
}
