//! Joins that yield to the scheduler, so a statement timeout can stop them.
//!
//! DataFusion's `EnsureCooperative` makes the *leaves* of a plan spend
//! Tokio's task budget. A join can emit millions of batches from one input
//! batch (a cross join of two `generate_series`) without polling a leaf, so
//! its task never yields: the timeout that aborts it never gets to run, and
//! the threads it holds stay busy for hours. Wrapping every operator with
//! more than one input (joins, unions) and every `UnnestExec` in a
//! `CooperativeExec` makes each batch they emit spend budget, so the task
//! yields every 128 batches and an abort takes effect.

use std::sync::Arc;

use datafusion::common::config::ConfigOptions;
use datafusion::common::tree_node::{Transformed, TreeNode};
use datafusion::error::Result;
use datafusion::physical_optimizer::PhysicalOptimizerRule;
use datafusion::physical_plan::ExecutionPlan;
use datafusion::physical_plan::coop::CooperativeExec;
use datafusion::physical_plan::unnest::UnnestExec;

/// The physical optimizer rule described in the module docs; runs last.
#[derive(Debug, Default)]
pub(crate) struct CooperativeJoins;

fn emits_more_than_it_reads(plan: &Arc<dyn ExecutionPlan>) -> bool {
    plan.children().len() > 1 || plan.downcast_ref::<UnnestExec>().is_some()
}

impl PhysicalOptimizerRule for CooperativeJoins {
    fn name(&self) -> &str {
        "silt_cooperative_joins"
    }

    fn optimize(
        &self,
        plan: Arc<dyn ExecutionPlan>,
        _config: &ConfigOptions,
    ) -> Result<Arc<dyn ExecutionPlan>> {
        plan.transform_up(|node| {
            if emits_more_than_it_reads(&node) {
                Ok(Transformed::yes(
                    Arc::new(CooperativeExec::new(node)) as Arc<dyn ExecutionPlan>
                ))
            } else {
                Ok(Transformed::no(node))
            }
        })
        .map(|transformed| transformed.data)
    }

    fn schema_check(&self) -> bool {
        true
    }
}
