//! What a run needs to know when it is one slot of a station.

use std::sync::Arc;

use crate::abort::Abort;
use crate::phase_sync::PhaseSync;
use crate::record::SlotRecord;

/// One slot's part in a batch.
#[derive(Debug)]
pub(crate) struct SlotRun {
    pub(crate) record: SlotRecord,
    pub(crate) sync: Option<Arc<PhaseSync>>,
    /// A shared plug that failed to set up: the run is an error, no phase is run.
    pub(crate) shared_setup_error: Option<String>,
    /// What the station's shared plugs add to the record (asked once, after their setup).
    pub(crate) shared_metadata: Arc<[crate::plug::PlugMetadata]>,
}

impl SlotRun {
    /// The slot is about to start the phase `index` of the test's phase list.
    pub(crate) fn reach_phase(&self, index: usize, abort: &Abort) {
        if let Some(sync) = &self.sync {
            sync.reach(self.record.index, index, abort);
        }
    }

    /// The slot has run its last phase.
    pub(crate) fn leave_sync(&self) {
        if let Some(sync) = &self.sync {
            sync.leave(self.record.index);
        }
    }
}
