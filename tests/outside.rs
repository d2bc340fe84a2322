//! Tests that need software from outside Rust: headless Chromium (to see
//! report.html as a person does) and a one-node SLURM cluster (slurm-wlm,
//! munge and root), and two "nodes" in namespaces of their own (unshare).
//! Where that software is missing they are reported as
//! ignored, with what they need, never as passed; `.ci/run` installs it
//! and sets ASSAY_REQUIRE_BROWSER=1 and ASSAY_REQUIRE_SLURM=1, and then a
//! missing piece fails them.

#![allow(clippy::disallowed_methods, reason = "tests read their fixtures and run records directly")]
#![allow(clippy::unwrap_used, clippy::expect_used, reason = "a test fails loudly on a broken expectation")]

#[path = "it/support.rs"]
#[allow(dead_code)]
mod support;

#[path = "it/report.rs"]
mod report;
// The sharded script both SLURM tests run (its own tests are `it`'s).
#[path = "it/nodes.rs"]
mod nodes;
#[path = "it/shard.rs"]
#[allow(dead_code, unused_imports)]
mod shard;
#[path = "it/slurm.rs"]
mod slurm;

use libtest_mimic::{Arguments, Trial};

/// A trial that runs `f`, or, where `missing` names what this machine
/// lacks and `required` is not set, an ignored one that says so.
fn needing(name: &str, missing: Option<String>, required: &str, f: fn()) -> Trial {
    let required = std::env::var(required).is_ok_and(|v| v == "1");
    let trial = Trial::test(name, move || {
        std::panic::catch_unwind(f).map_err(|e| {
            let msg = e
                .downcast_ref::<String>()
                .cloned()
                .or_else(|| e.downcast_ref::<&str>().map(|s| s.to_string()))
                .unwrap_or_else(|| "panicked".into());
            msg.into()
        })
    });
    match missing {
        Some(what) if !required => trial.with_ignored_flag(true).with_kind(format!("needs {what}")),
        _ => trial,
    }
}

fn main() {
    let args = Arguments::from_args();
    let browser = report::chromium().is_none().then(|| "chromium".to_string());
    let cluster = slurm::missing();
    let namespaces = nodes::missing();
    let trials = vec![
        needing(
            "report::report_renders_its_images_in_a_browser",
            browser,
            "ASSAY_REQUIRE_BROWSER",
            report::report_renders_its_images_in_a_browser,
        ),
        needing(
            "slurm::slurm_array_jobs_merge_to_the_one_machine_records",
            cluster.clone(),
            "ASSAY_REQUIRE_SLURM",
            slurm::slurm_array_jobs_merge_to_the_one_machine_records,
        ),
        needing(
            "slurm::a_slurm_benchmark_merges_to_the_one_machine_table",
            cluster.clone(),
            "ASSAY_REQUIRE_SLURM",
            slurm::a_slurm_benchmark_merges_to_the_one_machine_table,
        ),
        needing(
            "slurm::a_cancelled_shard_resubmitted_alone_completes_the_merge",
            cluster.clone(),
            "ASSAY_REQUIRE_SLURM",
            slurm::a_cancelled_shard_resubmitted_alone_completes_the_merge,
        ),
        needing(
            "slurm::a_four_shard_array_across_two_nodes_merges_to_the_one_machine_record",
            cluster.clone(),
            "ASSAY_REQUIRE_SLURM",
            slurm::a_four_shard_array_across_two_nodes_merges_to_the_one_machine_record,
        ),
        needing(
            "slurm::a_two_stage_submission_recovers_from_a_lost_first_stage_shard",
            cluster.clone(),
            "ASSAY_REQUIRE_SLURM",
            slurm::a_two_stage_submission_recovers_from_a_lost_first_stage_shard,
        ),
        needing(
            "nodes::a_run_on_another_node_keeps_this_nodes_unfinished_run",
            namespaces.clone(),
            "ASSAY_REQUIRE_NAMESPACES",
            nodes::a_run_on_another_node_keeps_this_nodes_unfinished_run,
        ),
        needing(
            "nodes::a_dead_nodes_unfinished_run_is_removed_when_its_lease_runs_out",
            namespaces,
            "ASSAY_REQUIRE_NAMESPACES",
            nodes::a_dead_nodes_unfinished_run_is_removed_when_its_lease_runs_out,
        ),
    ];
    libtest_mimic::run(&args, trials).exit();
}
