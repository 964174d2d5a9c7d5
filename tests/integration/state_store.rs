//! The shared state store (docs/state.md): one suite, run against each store — a local folder
//! (`file://`), S3 on a real `moto_server`, Azure Blob on a real Azurite — with two checkouts
//! of one ops repo sharing it, as two CI runners would.
//!
//! Services are started on a free 127.0.0.1 port per test and stopped when it ends.

use std::net::{TcpListener, TcpStream};
use std::path::Path;
use std::process::{Child, Command, Stdio};
use std::time::{Duration, Instant};

use crate::harness::{poll, require_tools, wait_bounded, TestRepo};

/// A store under test: the URL and the variables that reach it; the service (if any) is
/// stopped on drop.
struct Store {
    url: String,
    vars: Vec<(String, String)>,
    service: Option<Child>,
    _dir: Option<tempfile::TempDir>,
}

impl Drop for Store {
    fn drop(&mut self) {
        if let Some(c) = &mut self.service {
            let _ = c.kill();
            let _ = c.wait();
        }
    }
}

fn free_port() -> u16 {
    TcpListener::bind("127.0.0.1:0")
        .expect("bind")
        .local_addr()
        .expect("addr")
        .port()
}

fn wait_listening(port: u16, child: &mut Child, what: &str) {
    poll(Duration::from_secs(60), what, || {
        if let Ok(Some(s)) = child.try_wait() {
            panic!("{what} exited early: {s}");
        }
        TcpStream::connect(("127.0.0.1", port)).ok()
    });
}

fn folder() -> Option<Store> {
    let dir = tempfile::tempdir().expect("temp dir");
    let path = std::fs::canonicalize(dir.path()).expect("canonical");
    Some(Store {
        url: format!("file://{}/state", path.display()),
        vars: Vec::new(),
        service: None,
        _dir: Some(dir),
    })
}

fn s3() -> Option<Store> {
    if !require_tools(&["moto_server", "python3"]) {
        return None;
    }
    let port = free_port();
    let mut child = Command::new("moto_server")
        .args(["-H", "127.0.0.1", "-p", &port.to_string()])
        .stdout(Stdio::null())
        .stderr(Stdio::null())
        .spawn()
        .expect("moto_server starts");
    wait_listening(port, &mut child, "moto_server");
    let endpoint = format!("http://127.0.0.1:{port}");
    let made = Command::new("python3")
        .args([
            "-c",
            "import sys, boto3; boto3.client('s3', endpoint_url=sys.argv[1], region_name='us-east-1', aws_access_key_id='test', aws_secret_access_key='test').create_bucket(Bucket='ops-state')",
            &endpoint,
        ])
        .status()
        .expect("python3 runs");
    assert!(made.success(), "creating the bucket on moto failed");
    Some(Store {
        url: "s3://ops-state/team/ops".into(),
        vars: vec![
            ("AWS_ENDPOINT_URL".into(), endpoint),
            ("AWS_ACCESS_KEY_ID".into(), "test".into()),
            ("AWS_SECRET_ACCESS_KEY".into(), "test".into()),
            ("AWS_REGION".into(), "us-east-1".into()),
        ],
        service: Some(child),
        _dir: None,
    })
}

/// Azurite's well-known development account.
const AZURITE_ACCOUNT: &str = "devstoreaccount1";
const AZURITE_KEY: &str =
    "Eby8vdM02xNOcqFlqUwJPLlmEtlCDXJ1OUzFT50uSRZ6IFsuFq2UVErCz4I6tq/K1SZFPTOtr/KBHBeksoGMGw==";

/// Creates a container with a SharedKey-signed request (Python's standard library only).
const CREATE_CONTAINER: &str = r#"
import base64, email.utils, hashlib, hmac, sys, urllib.request
port, account, key, container = sys.argv[1:5]
date = email.utils.formatdate(usegmt=True)
version = "2021-08-06"
# urllib sends a Content-Type with any body: name it, and sign it (the 6th field).
ctype = "application/octet-stream"
to_sign = ("PUT\n" + "\n" * 4 + ctype + "\n" + "\n" * 6 + f"x-ms-date:{date}\nx-ms-version:{version}\n"
           + f"/{account}/{account}/{container}\nrestype:container")
sig = base64.b64encode(hmac.new(base64.b64decode(key), to_sign.encode(), hashlib.sha256).digest()).decode()
req = urllib.request.Request(f"http://127.0.0.1:{port}/{account}/{container}?restype=container",
    data=b"", method="PUT",
    headers={"Content-Type": ctype, "x-ms-date": date, "x-ms-version": version, "Authorization": f"SharedKey {account}:{sig}"})
urllib.request.urlopen(req)
"#;

fn azure() -> Option<Store> {
    if !require_tools(&["azurite-blob", "python3"]) {
        return None;
    }
    let port = free_port();
    let mut child = Command::new("azurite-blob")
        .args([
            "--blobHost",
            "127.0.0.1",
            "--blobPort",
            &port.to_string(),
            "--inMemoryPersistence",
            "--skipApiVersionCheck",
            "--silent",
        ])
        // Azurite writes its debug log and extent folders in its working folder.
        .current_dir(std::env::temp_dir())
        .stdout(Stdio::null())
        .stderr(Stdio::null())
        .spawn()
        .expect("azurite-blob starts");
    wait_listening(port, &mut child, "azurite-blob");
    let made = Command::new("python3")
        .args([
            "-c",
            CREATE_CONTAINER,
            &port.to_string(),
            AZURITE_ACCOUNT,
            AZURITE_KEY,
            "ops-state",
        ])
        .status()
        .expect("python3 runs");
    assert!(made.success(), "creating the container on Azurite failed");
    Some(Store {
        url: "az://ops-state/team/ops".into(),
        vars: vec![
            ("AZURE_STORAGE_ACCOUNT_NAME".into(), AZURITE_ACCOUNT.into()),
            ("AZURE_STORAGE_ACCOUNT_KEY".into(), AZURITE_KEY.into()),
            (
                "AZURE_STORAGE_ENDPOINT".into(),
                format!("http://127.0.0.1:{port}/{AZURITE_ACCOUNT}"),
            ),
        ],
        service: Some(child),
        _dir: None,
    })
}

/// Two checkouts of one ops repo, both using the store (through `BITOPS_STATE`).
///
/// `net/tf` writes an output; `app` depends on `net`; `app/slow` waits for `release` in its
/// checkout's out folder (so a test decides when it ends); `app/flaky` fails until `fixed`
/// exists in its checkout's out folder.
fn checkouts(store: &Store, extra: &[(&str, &str)]) -> (TestRepo, TestRepo) {
    let make = || {
        let mut r = TestRepo::new();
        r.env(
            "net",
            "deployments:\n  tf:\n    plugin: sh\nlogging:\n  masks:\n    - search: 'vpc-[0-9]+'\n      replace: 'vpc-***'\n",
        );
        r.dep("net", "tf", "echo VPC=vpc-123 >> \"$BITOPS_OUTPUT_FILE\"");
        r.env(
            "app",
            "depends_on: [net]\ndeployments:\n  use:\n    plugin: sh\n  slow:\n    plugin: sh\n  flaky:\n    plugin: sh\n",
        );
        r.dep(
            "app",
            "use",
            "echo \"$BITOPS_OUTPUT_NET_TF_VPC\" > \"$T_OUT/seen\"",
        );
        r.dep(
            "app",
            "slow",
            "if [ -e \"$T_OUT/hold\" ]; then waitfor \"$T_OUT/release\" 120; fi",
        );
        r.dep("app", "flaky", "test -e \"$T_OUT/fixed\"");
        r.var("BITOPS_STATE", &store.url);
        for (k, v) in &store.vars {
            r.var(k, v);
        }
        for (k, v) in extra {
            r.var(k, v);
        }
        r
    };
    (make(), make())
}

fn started(repo: &TestRepo, id: &str) -> bool {
    repo.out_file(&format!("started/{}", id.replace('/', "__")))
        .exists()
}

fn touch(p: &Path) {
    std::fs::write(p, "").expect("touch");
}

/// Concurrent deploys of one environment from both checkouts: exactly one runs, the other
/// exits 4 naming the holder (its host, run id and command).
fn concurrent_deploys(store: Store) {
    let (a, b) = checkouts(&store, &[]);
    for r in [&a, &b] {
        touch(&r.out_file("hold"));
        touch(&r.out_file("fixed"));
    }
    let args = ["deploy", "-e", "app", "--with-deps", "--progress", "none"];
    let mut children = [a.spawn(&args), b.spawn(&args)];
    // The loser stops at once; the winner waits in `app/slow` for its release file.
    let loser = poll(Duration::from_secs(60), "one run to be refused", || {
        (0..2).find(|&i| children[i].try_wait().expect("wait").is_some())
    });
    let [ca, cb] = children;
    let (mut lc, mut wc, loser, winner) = if loser == 0 {
        (ca, cb, "a", "b")
    } else {
        (cb, ca, "b", "a")
    };
    let (lr, wr) = if loser == "a" { (&a, &b) } else { (&b, &a) };
    assert_eq!(
        wait_bounded(&mut lc, Duration::from_secs(5)),
        4,
        "{loser} should be refused:\n{}",
        lr.stderr_so_far()
    );
    let err = lr.stderr_so_far();
    assert!(err.contains("being deployed by another run"), "{err}");
    assert!(err.contains(&format!("on {}", hostname())), "{err}");
    assert!(
        err.contains("bitops deploy -e app"),
        "the holder's command: {err}"
    );
    // The holder's run id is the one its own run reports.
    poll(
        Duration::from_secs(60),
        "the winner to start app/slow",
        || started(wr, "app/slow").then_some(()),
    );
    let winner_run = wr.run_dirs();
    let run_id = winner_run[0]
        .file_name()
        .unwrap()
        .to_string_lossy()
        .into_owned();
    assert!(
        err.contains(&run_id),
        "names the holder's run {run_id}: {err}"
    );
    assert!(lr.started().is_empty(), "the refused run started nothing");
    touch(&wr.out_file("release"));
    assert_eq!(
        wait_bounded(&mut wc, Duration::from_secs(120)),
        0,
        "{winner}:\n{}",
        wr.stderr_so_far()
    );
    // Released: the other checkout may deploy now.
    touch(&lr.out_file("release"));
    let again = lr.run(&args);
    assert_eq!(again.code, 0, "{again}");
}

fn hostname() -> String {
    std::fs::read_to_string("/proc/sys/kernel/hostname")
        .map(|h| h.trim().to_string())
        .unwrap_or_default()
}

/// The holder is SIGKILLed: its lease is no longer renewed, the next run is refused while it
/// lasts and proceeds once it expired (waiting for it with --lock-timeout).
fn killed_holder(store: Store) {
    let (a, b) = checkouts(&store, &[("BITOPS_LEASE_TTL", "3s")]);
    touch(&a.out_file("hold"));
    let args = ["deploy", "--only", "app/slow", "--progress", "none"];
    let mut ca = a.spawn(&args);
    poll(Duration::from_secs(60), "app/slow to start in A", || {
        started(&a, "app/slow").then_some(())
    });
    nix::sys::signal::kill(
        nix::unistd::Pid::from_raw(ca.id() as i32),
        nix::sys::signal::Signal::SIGKILL,
    )
    .expect("kill");
    let _ = ca.wait();
    // Let A's orphaned deployment end.
    touch(&a.out_file("release"));
    let refused = b.run(&args);
    // Refused only while the lease lasts: if this machine was slow enough for it to expire
    // already, B simply runs (both are right; the wait below is what must hold).
    if refused.code == 4 {
        assert!(refused.stderr.contains("lease expires in"), "{refused}");
    } else {
        assert_eq!(refused.code, 0, "{refused}");
    }
    let t = Instant::now();
    let next = b.run(&[
        "deploy",
        "--only",
        "app/slow",
        "--progress",
        "none",
        "--lock-timeout",
        "60s",
    ]);
    assert_eq!(next.code, 0, "{next}");
    assert!(t.elapsed() < Duration::from_secs(60));
    assert!(started(&b, "app/slow"));
}

/// Outputs deployed from checkout A reach a dependent deployed alone from checkout B; `state
/// show` prints them masked; `plan` names the store.
fn outputs_cross_checkouts(store: Store) {
    let (a, b) = checkouts(&store, &[]);
    let r = a.run(&["deploy", "-e", "net", "--progress", "none"]);
    assert_eq!(r.code, 0, "{r}");
    let plan = b.run(&["plan", "--only", "app/use"]);
    assert_eq!(plan.code, 0, "{plan}");
    assert!(
        plan.stdout
            .contains(&format!("State store: {} (from BITOPS_STATE)", store.url)),
        "{plan}"
    );
    let r = b.run(&["deploy", "--only", "app/use", "--progress", "none"]);
    assert_eq!(r.code, 0, "{r}");
    assert_eq!(b.read_out("seen").trim(), "vpc-123");
    assert!(!started(&b, "net/tf"), "B ran only the dependent");
    assert!(
        !b.path(".bitops/outputs").exists(),
        "outputs come from the store, not B's local folder"
    );
    let show = b.run(&["state", "show", "net/tf"]);
    assert_eq!(show.code, 0, "{show}");
    assert!(show.stdout.contains("VPC = vpc-***"), "{show}");
    assert!(!show.stdout.contains("vpc-123"), "{show}");
    let list = b.run(&["state", "list"]);
    assert_eq!(list.code, 0, "{list}");
    assert!(list.stdout.contains("net/tf"), "{list}");
    assert!(
        list.stdout.matches("finished (report kept)").count() == 2,
        "both runs, from both checkouts: {list}"
    );
}

/// A run in checkout A fails half-way; `bitops report` in B shows it, and `deploy --resume`
/// in B reruns only what did not succeed.
fn report_and_resume(store: Store) {
    let (a, b) = checkouts(&store, &[]);
    let r = a.run(&[
        "deploy",
        "--only",
        "app/use",
        "--only",
        "app/flaky",
        "--progress",
        "none",
    ]);
    assert_eq!(r.code, 1, "{r}");
    let run_dirs = a.run_dirs();
    let run_id = run_dirs[0]
        .file_name()
        .unwrap()
        .to_string_lossy()
        .into_owned();
    let rep = b.run(&["report"]);
    assert_eq!(rep.code, 0, "{rep}");
    assert!(rep.stdout.contains(&format!("Run {run_id}")), "{rep}");
    assert!(rep.stdout.contains("app/flaky"), "{rep}");
    let rep = b.run(&["report", &run_id[..12]]);
    assert_eq!(rep.code, 0, "{rep}");
    touch(&b.out_file("fixed"));
    let r = b.run(&["deploy", "--resume", &run_id, "--progress", "none"]);
    assert_eq!(r.code, 0, "{r}");
    assert!(
        r.stderr.contains(&format!("resuming run {run_id}: 1 of 2")),
        "{r}"
    );
    assert!(started(&b, "app/flaky"));
    assert!(!started(&b, "app/use"), "what succeeded in A is not rerun");
}

/// `state list` shows a held lock with its holder; `state unlock` needs --yes off a terminal.
fn list_and_unlock(store: Store) {
    let (a, b) = checkouts(&store, &[]);
    touch(&a.out_file("hold"));
    let mut ca = a.spawn(&["deploy", "--only", "app/slow", "--progress", "none"]);
    poll(Duration::from_secs(60), "app/slow to start in A", || {
        started(&a, "app/slow").then_some(())
    });
    let list = b.run(&["state", "list"]);
    assert_eq!(list.code, 0, "{list}");
    assert!(list.stdout.contains("app "), "{list}");
    assert!(
        list.stdout.contains("bitops deploy --only app/slow"),
        "{list}"
    );
    let no = b.run(&["state", "unlock", "app"]);
    assert_eq!(no.code, 2, "{no}");
    assert!(no.stderr.contains("--yes"), "{no}");
    let yes = b.run(&["state", "unlock", "app", "--yes"]);
    assert_eq!(yes.code, 0, "{yes}");
    let list = b.run(&["state", "list"]);
    assert!(
        !list.stdout.contains("bitops deploy --only app/slow"),
        "{list}"
    );
    touch(&a.out_file("release"));
    let _ = wait_bounded(&mut ca, Duration::from_secs(120));
}

/// A lease taken over mid-run (unlocked by hand, then taken by another run): the holder says
/// so at once, starts no new deployment, lets the running one finish, and fails.
fn lost_lease(store: Store) {
    let (a, b) = checkouts(&store, &[("BITOPS_LEASE_TTL", "3s")]);
    touch(&a.out_file("hold"));
    touch(&a.out_file("fixed"));
    // `app/slow` then `app/flaky` (the environment's order).
    let mut ca = a.spawn(&[
        "deploy",
        "--only",
        "app/slow",
        "--only",
        "app/flaky",
        "--progress",
        "plain",
    ]);
    poll(Duration::from_secs(60), "app/slow to start in A", || {
        started(&a, "app/slow").then_some(())
    });
    let un = b.run(&["state", "unlock", "app", "--yes"]);
    assert_eq!(un.code, 0, "{un}");
    let r = b.run(&["deploy", "--only", "app/use", "--progress", "none"]);
    assert_eq!(r.code, 0, "{r}");
    poll(
        Duration::from_secs(30),
        "A to notice its lease is gone",
        || {
            a.stderr_so_far()
                .contains("no new deployment will start")
                .then_some(())
        },
    );
    touch(&a.out_file("release"));
    let code = wait_bounded(&mut ca, Duration::from_secs(120));
    let err = a.stderr_so_far();
    assert_eq!(code, 1, "{err}");
    assert!(!started(&a, "app/flaky"), "nothing new started: {err}");
    assert!(err.contains("lock of environment `app`"), "{err}");
}

/// A store that cannot be reached, or refuses writes, stops the run before anything starts,
/// within 30 s, exit 2 with the URL and the error.
fn unusable_store(store: Store) {
    let (a, _) = checkouts(&store, &[]);
    let mut vars: Vec<(String, String)> = Vec::new();
    let url = if store.url.starts_with("file://") {
        // A folder below a plain file can never be created.
        let file = a.out_file("not-a-folder");
        touch(&file);
        let url = format!("file://{}/state", file.display());
        vars.push(("BITOPS_STATE".into(), url.clone()));
        url
    } else {
        let closed = format!("http://127.0.0.1:{}", free_port());
        for (k, v) in &store.vars {
            if k.contains("ENDPOINT") {
                vars.push((
                    k.clone(),
                    v.replace(
                        v.split('/').take(3).collect::<Vec<_>>().join("/").as_str(),
                        &closed,
                    ),
                ));
            }
        }
        store.url.clone()
    };
    let vars: Vec<(&str, &str)> = vars.iter().map(|(k, v)| (k.as_str(), v.as_str())).collect();
    let t = Instant::now();
    let r = a.run_env(&["deploy", "-e", "net", "--progress", "none"], &vars);
    assert_eq!(r.code, 2, "{r}");
    assert!(
        t.elapsed() < Duration::from_secs(30),
        "took {:?}",
        t.elapsed()
    );
    assert!(r.stderr.contains(&url), "names the URL: {r}");
    assert!(a.started().is_empty(), "nothing started: {r}");
}

macro_rules! suite {
    ($($store:ident),*) => {
        $(
            mod $store {
                #[test]
                fn concurrent_deploys_of_one_environment_run_once() {
                    if let Some(s) = super::$store() { super::concurrent_deploys(s) }
                }
                #[test]
                fn a_killed_holders_lease_expires() {
                    if let Some(s) = super::$store() { super::killed_holder(s) }
                }
                #[test]
                fn outputs_reach_a_dependent_deployed_from_another_checkout() {
                    if let Some(s) = super::$store() { super::outputs_cross_checkouts(s) }
                }
                #[test]
                fn report_and_resume_work_from_another_checkout() {
                    if let Some(s) = super::$store() { super::report_and_resume(s) }
                }
                #[test]
                fn state_list_and_unlock() {
                    if let Some(s) = super::$store() { super::list_and_unlock(s) }
                }
                #[test]
                fn a_lease_lost_mid_run_stops_new_deployments() {
                    if let Some(s) = super::$store() { super::lost_lease(s) }
                }
                #[test]
                fn an_unusable_store_stops_the_run_before_anything_starts() {
                    if let Some(s) = super::$store() { super::unusable_store(s) }
                }
            }
        )*
    };
}

suite!(folder, s3, azure);

/// Choosing the store: a bad URL is a configuration error pointing at its line, the store is
/// set for the whole repo only, and `--state` beats `BITOPS_STATE` beats `bitops.state`.
#[test]
fn choosing_the_store() {
    let repo = TestRepo::with_repo_config("state: ftp://nowhere/x\n");
    repo.env("net", "deployments:\n  tf: {plugin: sh}\n");
    repo.dep("net", "tf", "true");
    let r = repo.run(&["plan"]);
    assert_eq!(r.code, 2, "{r}");
    assert!(r.stderr.contains("unknown scheme `ftp`"), "{r}");
    assert!(
        r.stderr.contains("bitops.config.yaml"),
        "points at the file: {r}"
    );

    let dir = tempfile::tempdir().expect("temp dir");
    let url = format!("file://{}/s", dir.path().display());
    let r = repo.run_env(&["plan", "--state", &url], &[("BITOPS_STATE", "gs://b/p")]);
    assert_eq!(
        r.code, 0,
        "--state wins over the variable and the config: {r}"
    );
    assert!(
        r.stdout
            .contains(&format!("State store: {url} (from --state)")),
        "{r}"
    );
    let r = repo.run_env(&["plan"], &[("BITOPS_STATE", "gs://b/p")]);
    assert_eq!(r.code, 2, "{r}");
    assert!(r.stderr.contains("not built into this bitops"), "{r}");

    let repo = TestRepo::new();
    repo.env(
        "net",
        "state: s3://b/p\ndeployments:\n  tf:\n    plugin: sh\n",
    );
    repo.dep("net", "tf", "true");
    let r = repo.run(&["plan"]);
    assert_eq!(r.code, 2, "{r}");
    assert!(
        r.stderr
            .contains("the state store is set for the whole repo"),
        "{r}"
    );
    // Without a shared store, the plan reads as it always did.
    let repo = TestRepo::new();
    repo.env("net", "deployments:\n  tf: {plugin: sh}\n");
    repo.dep("net", "tf", "true");
    let r = repo.run(&["plan"]);
    assert_eq!(r.code, 0, "{r}");
    assert!(!r.stdout.contains("State store"), "{r}");
}

/// Names given to `bitops state` become keys and paths: anything but a plain environment
/// name is refused, and nothing outside the store is touched.
#[test]
fn state_commands_refuse_paths_as_names() {
    let repo = TestRepo::new();
    repo.dep("net", "tf", "true");
    repo.write("victim.lock", "keep me");
    let r = repo.run(&["state", "unlock", "../../victim", "--yes"]);
    assert_eq!(r.code, 2, "{r}");
    assert!(repo.path("victim.lock").exists());
    let r = repo.run(&["state", "show", "../x/y"]);
    assert_eq!(r.code, 2, "{r}");
    let r = repo.run(&["state", "show", "net/../../x"]);
    assert_eq!(r.code, 2, "{r}");
    let r = repo.run(&["state", "list"]);
    assert_eq!(r.code, 0, "{r}");
    assert!(r.stdout.contains("(embedded default)"), "{r}");
}
