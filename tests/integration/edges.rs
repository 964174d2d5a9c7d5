//! Edge kinds: the implicit order inside an environment is an order (wait for the previous
//! deployment to finish, whatever its result); declared `depends_on` needs success. Plans say
//! which is which. (The run-time behaviour is in failure.rs: `fail_fast_false_*`.)

use crate::harness::TestRepo;

fn repo() -> TestRepo {
    let repo = TestRepo::new();
    repo.env(
        "a",
        "deployments:\n  first: {plugin: sh}\n  second: {plugin: sh}\n  third: {plugin: sh, depends_on: [first]}\n",
    );
    for d in ["first", "second", "third"] {
        repo.dep("a", d, "true");
    }
    repo
}

#[test]
fn plan_json_and_text_show_each_edge_kind() {
    let repo = repo();
    let plan = repo.plan_json(&[]);
    let node = |id: &str| {
        plan["nodes"]
            .as_array()
            .unwrap()
            .iter()
            .find(|n| n["id"] == id)
            .unwrap_or_else(|| panic!("{id} in {plan}"))
            .clone()
    };
    assert_eq!(
        node("a/second")["dependencies"],
        serde_json::json!([{"id": "a/first", "kind": "order"}])
    );
    assert_eq!(
        node("a/third")["dependencies"],
        serde_json::json!([{"id": "a/first", "kind": "success"}])
    );
    let out = repo.run(&["plan", "--color", "never"]);
    assert_eq!(out.code, 0, "{out}");
    assert!(
        out.stdout
            .contains("a/first (order: waits for it to finish, not to succeed)"),
        "{}",
        out.stdout
    );
}

#[test]
fn keep_going_runs_the_next_deployment_in_order_but_not_a_declared_dependent() {
    let repo = repo();
    repo.dep("a", "first", "exit 4");
    let out = repo.run(&["deploy", "--keep-going", "--progress", "plain"]);
    assert_eq!(out.code, 1, "{out}");
    let t = repo.trace();
    assert_eq!(t.span("a/second").rc, Some(0), "{out}");
    assert!(
        !t.ran("a/third"),
        "a declared dependency needs success: {out}"
    );
}
