//! `regaudit writes`: the predicted operations and their summary.

use crate::audit::Audit;
use crate::model::writes::{self, Action, Operation, Settings};
use crate::report::writes::{Summary, WritesFilter, WritesReport};
use crate::report::SCHEMA_VERSION;
use crate::select::Scope;

impl Summary {
    fn add(&mut self, op: &Operation) {
        self.operations += 1;
        if !op.writes_anything() {
            return;
        }
        self.writing_operations += 1;
        self.conditional_operations += usize::from(op.condition.is_some());
        for w in &op.writes {
            match w.action {
                Action::Create => self.creates += 1,
                Action::Modify => self.modifies += 1,
                Action::Delete => self.deletes += 1,
            }
        }
    }

    fn finish(mut self, unmodelled: &[String]) -> Summary {
        self.incomplete = !unmodelled.is_empty();
        self.serves_read_only = self.writing_operations == 0 && !self.incomplete;
        self
    }
}

/// The summary alone, without keeping the operations.
/// With `scope`, of the operations on the selected repositories.
pub fn summarize(audit: &Audit, settings: &Settings, scope: Option<&Scope>) -> Summary {
    let mut summary = Summary::default();
    writes::predict_each(&audit.inventory, &audit.contents, audit.target, settings, &mut |op| {
        if scope.is_none_or(|s| s.keeps_repository(&op.repository)) {
            summary.add(&op)
        }
    });
    summary.finish(&writes::unmodelled(&audit.inventory))
}

pub fn build(audit: &Audit, settings: &Settings, purge_age: &str) -> WritesReport {
    let prediction = writes::predict(&audit.inventory, &audit.contents, audit.target, settings);
    let mut summary = Summary::default();
    prediction.operations.iter().for_each(|op| summary.add(op));
    let summary = summary.finish(&prediction.unmodelled);
    WritesReport {
        schema_version: SCHEMA_VERSION,
        target: audit.target,
        root: audit.root.path().display().to_string(),
        now: settings.now.to_rfc3339_opts(chrono::SecondsFormat::AutoSi, true),
        purge_age: purge_age.to_string(),
        operations: prediction.operations,
        proxy: prediction.proxy,
        unmodelled: prediction.unmodelled,
        summary,
        filter: None,
    }
}

/// `--repo`: keeps the operations on the selected repositories and sums
/// them; the whole prediction's summary goes in `filter`. The pull-through
/// cache and what is unmodelled concern the whole registry and stay.
pub fn filter(report: &mut WritesReport, scope: &Scope) {
    report.operations.retain(|op| scope.keeps_repository(&op.repository));
    let mut summary = Summary::default();
    report.operations.iter().for_each(|op| summary.add(op));
    let shown = summary.finish(&report.unmodelled);
    let whole_run = std::mem::replace(&mut report.summary, shown);
    report.filter = Some(WritesFilter { scope: scope.note(), whole_run });
}
