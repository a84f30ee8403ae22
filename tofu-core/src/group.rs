//! Phase groups and subtests: the shape of a test beyond a list of phases.

use crate::phase::Phase;

/// One node of a test: a phase, a group or a subtest.
#[derive(Debug, Clone)]
#[non_exhaustive]
pub enum PhaseNode {
    /// A phase.
    Phase(Phase),
    /// Setup, main and teardown phases.
    Group(PhaseGroup),
    /// A named part of the test that can fail on its own.
    Subtest(Subtest),
}

impl From<Phase> for PhaseNode {
    fn from(phase: Phase) -> Self {
        PhaseNode::Phase(phase)
    }
}

impl From<PhaseGroup> for PhaseNode {
    fn from(group: PhaseGroup) -> Self {
        PhaseNode::Group(group)
    }
}

impl From<Subtest> for PhaseNode {
    fn from(subtest: Subtest) -> Self {
        PhaseNode::Subtest(subtest)
    }
}

/// Setup, main and teardown phases (OpenHTF's `PhaseGroup`).
///
/// OpenHTF's rule: the main and teardown phases run when the setup phases completed, that is
/// none of them ended the run (a failed measurement doesn't; an error, a timeout, `Stop`,
/// `stop_on_measurement_fail` or Ctrl-C does). The teardown then runs whatever happens in main
/// (stop, error, timeout, Ctrl-C), every teardown phase even if another fails; a second Ctrl-C
/// skips it. A group the run never reached runs nothing.
///
/// ```
/// use tofu_core::prelude::*;
/// # #[phase] fn power_on() {}
/// # #[phase] fn measure() {}
/// # #[phase] fn power_off() {}
/// let powered = PhaseGroup::new("powered").setup([power_on]).main([measure]).teardown([power_off]);
/// let test = Test::new("FVT1").phases([powered]);
/// # let _ = test;
/// ```
#[derive(Debug, Clone, Default)]
pub struct PhaseGroup {
    pub(crate) name: String,
    pub(crate) setup: Vec<PhaseNode>,
    pub(crate) main: Vec<PhaseNode>,
    pub(crate) teardown: Vec<PhaseNode>,
}

impl PhaseGroup {
    /// An empty group.
    pub fn new(name: impl Into<String>) -> Self {
        PhaseGroup {
            name: name.into(),
            ..PhaseGroup::default()
        }
    }

    /// Adds setup nodes.
    pub fn setup<N: Into<PhaseNode>>(mut self, nodes: impl IntoIterator<Item = N>) -> Self {
        self.setup.extend(nodes.into_iter().map(Into::into));
        self
    }

    /// Adds main nodes (groups may nest).
    pub fn main<N: Into<PhaseNode>>(mut self, nodes: impl IntoIterator<Item = N>) -> Self {
        self.main.extend(nodes.into_iter().map(Into::into));
        self
    }

    /// Adds teardown nodes.
    pub fn teardown<N: Into<PhaseNode>>(mut self, nodes: impl IntoIterator<Item = N>) -> Self {
        self.teardown.extend(nodes.into_iter().map(Into::into));
        self
    }

    /// The group's name.
    pub fn name(&self) -> &str {
        &self.name
    }
}

/// A named part of a test (OpenHTF's `Subtest`): a phase returning
/// [`PhaseResult::FailSubtest`](crate::PhaseResult::FailSubtest) fails it and skips its
/// remaining phases (recorded as SKIP, those of subtests nested in it too); the teardown of a
/// group it had entered still runs; the test goes on after it, and ends FAIL.
#[derive(Debug, Clone)]
pub struct Subtest {
    pub(crate) name: String,
    pub(crate) nodes: Vec<PhaseNode>,
}

impl Subtest {
    /// A subtest of these nodes.
    pub fn new<N: Into<PhaseNode>>(
        name: impl Into<String>,
        nodes: impl IntoIterator<Item = N>,
    ) -> Self {
        Subtest {
            name: name.into(),
            nodes: nodes.into_iter().map(Into::into).collect(),
        }
    }

    /// The subtest's name.
    pub fn name(&self) -> &str {
        &self.name
    }
}

impl PhaseNode {
    /// Every phase of the node, depth first, in the order they would run.
    pub(crate) fn phases<'a>(&'a self, out: &mut Vec<&'a Phase>) {
        match self {
            PhaseNode::Phase(p) => out.push(p),
            PhaseNode::Group(g) => {
                for n in g.setup.iter().chain(&g.main).chain(&g.teardown) {
                    n.phases(out);
                }
            }
            PhaseNode::Subtest(s) => {
                for n in &s.nodes {
                    n.phases(out);
                }
            }
        }
    }
}
