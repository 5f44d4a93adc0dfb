//! One VM's progress: milestones with their times, the marker, quotes of the
//! written files, and the verdict for the VM's role. Fed with events by the
//! watcher; no I/O here, so the verdict rules are unit-tested.
use std::collections::BTreeMap;

use serde::Serialize;

use super::console::{Event, MarkerLine, Milestone};
use super::plan::Role;
use crate::beacon::Beacon;

/// How a VM ended.
#[derive(Debug, Clone, PartialEq, Eq, Serialize)]
#[serde(tag = "result", content = "reason", rename_all = "lowercase")]
pub enum Verdict {
    Pass,
    Fail(String),
}

/// Everything seen from one VM.
#[derive(Debug, Clone, Default, Serialize)]
pub(crate) struct Progress {
    pub reached: BTreeMap<Milestone, f64>,
    pub marker: Option<MarkerLine>,
    /// `(path, line)` quotes of files the files stage wrote.
    pub quotes: Vec<(String, String)>,
    pub failure: Option<String>,
    pub local_boot: bool,
    /// What the loader said when it gave up on this attempt.
    pub loader_gave_up: Option<String>,
    /// The address DHCP gave the VM.
    pub ip: Option<String>,
    /// Beacons the node sent to the boot server, with their times.
    pub beacons: BTreeMap<String, f64>,
}

impl Progress {
    /// Whether the loader runs and nothing later has happened yet: the stage
    /// in which a stalled download leaves the console silent.
    pub(crate) fn in_loader(&self) -> bool {
        self.reached.contains_key(&Milestone::Loader)
            && !self.reached.contains_key(&Milestone::Kernel)
            && self.marker.is_none()
            && self.failure.is_none()
            && !self.local_boot
    }

    /// Records one event seen `secs` after the VM started.
    pub(crate) fn apply(&mut self, event: Event, secs: f64) {
        match event {
            Event::Reached(m) => self.reach(m, secs),
            Event::MarkerOk(marker) => {
                self.reach(Milestone::Marker, secs);
                self.marker = Some(marker);
            }
            Event::Failed(why) => {
                self.failure.get_or_insert(why);
            }
            Event::LocalBoot => self.local_boot = true,
            Event::LoaderGaveUp(line) => {
                self.loader_gave_up.get_or_insert(line);
            }
            Event::Quote { path, text } => self.quotes.push((path, text)),
        }
    }

    /// Keeps the first time a milestone was reached (firmware repeats banners).
    pub(crate) fn reach(&mut self, milestone: Milestone, secs: f64) {
        self.reached.entry(milestone).or_insert(secs);
    }

    /// Records a beacon; the first time counts.
    pub(crate) fn beacon(&mut self, milestone: &str, secs: f64) {
        self.beacons.entry(milestone.to_string()).or_insert(secs);
    }

    /// Records a beacon with its detail. One that says the install stopped
    /// for the operator (its disk missing, or holding data without `wipe`)
    /// is also the node's failure, naming the detail: such an install does
    /// not retry, so the run fails at once.
    pub(crate) fn beacon_with(&mut self, milestone: &str, detail: Option<&str>, secs: f64) {
        self.beacon(milestone, secs);
        if milestone.parse().is_ok_and(Beacon::install_stopped) {
            let why = match detail {
                Some(detail) => format!("{milestone} ({detail})"),
                None => milestone.to_string(),
            };
            self.apply(Event::Failed(why), secs);
        }
    }

    /// Whether a site node is done: the stand-in's marker or, for real
    /// Flatcar, the `install-done` beacon; with `until`, that beacon only.
    fn node_done(&self, until: Option<Beacon>) -> bool {
        match until {
            Some(beacon) => self.beacons.contains_key(beacon.name()),
            None => self.marker.is_some() || self.beacons.contains_key(Beacon::InstallDone.name()),
        }
    }

    /// The verdict once the VM is finished, or `None` while it should keep running.
    pub(crate) fn verdict(&self, role: &Role, until: Option<Beacon>) -> Option<Verdict> {
        let ignition = self.reached.contains_key(&Milestone::Ignition);
        match role {
            Role::Node if self.node_done(until) => Some(Verdict::Pass),
            Role::Node => self.failure.clone().map(Verdict::Fail),
            Role::Stranger if self.marker.is_some() || ignition => Some(Verdict::Fail(
                "a machine with an unknown MAC fetched an Ignition config".into(),
            )),
            // The loader must have run: it is what read the default config.
            Role::Stranger => (self.local_boot && self.reached.contains_key(&Milestone::Loader))
                .then_some(Verdict::Pass),
            Role::Intruder { target, .. } => match (&self.marker, &self.failure) {
                (Some(_), _) => Some(Verdict::Fail(format!(
                    "it was served {target}'s Ignition config"
                ))),
                (None, Some(_)) => Some(Verdict::Pass),
                _ => None,
            },
        }
    }

    /// The verdict when the VM stopped or ran out of time without finishing.
    pub(crate) fn unfinished(&self, role: &Role, until: Option<Beacon>, why: &str) -> Verdict {
        self.verdict(role, until).unwrap_or_else(|| {
            let last = self
                .reached
                .keys()
                .next_back()
                .map_or("nothing", |m| m.as_str());
            Verdict::Fail(format!("{why} (last milestone: {last})"))
        })
    }

    /// The state column of the live table.
    pub(crate) fn state(&self, role: &Role, finished: Option<&Verdict>) -> String {
        match finished {
            Some(Verdict::Pass) => match role {
                Role::Node => "ok".into(),
                Role::Stranger => "ok: local boot, no Ignition".into(),
                Role::Intruder { .. } => "ok: refused".into(),
            },
            Some(Verdict::Fail(why)) => format!("FAIL: {why}"),
            None => match self.beacons.iter().max_by(|a, b| a.1.total_cmp(b.1)) {
                Some((beacon, _)) => format!("booting (beacon {beacon})"),
                None => "booting".into(),
            },
        }
    }
}

#[cfg(test)]
mod tests {
    use super::*;
    use crate::lab::plan::DirectBoot;

    fn intruder() -> Role {
        let boot = DirectBoot {
            kernel: "k".into(),
            initrd: "i".into(),
            append: String::new(),
        };
        Role::Intruder {
            target: "cp2".into(),
            boot,
        }
    }

    #[test]
    fn a_stopped_install_fails_the_node_with_its_detail() {
        let mut p = Progress::default();
        p.beacon_with("install-started", None, 30.0);
        assert_eq!(p.verdict(&Role::Node, None), None);
        p.beacon_with(
            "install-disk-missing",
            Some("vda=20G,QEMU_HARDDISK,virtio-w1"),
            40.0,
        );
        assert_eq!(
            p.verdict(&Role::Node, None),
            Some(Verdict::Fail(
                "install-disk-missing (vda=20G,QEMU_HARDDISK,virtio-w1)".into()
            ))
        );
        assert!(p.beacons.contains_key("install-disk-missing"));
    }

    #[test]
    fn first_time_counts() {
        let mut p = Progress::default();
        p.apply(Event::Reached(Milestone::Loader), 2.0);
        p.apply(Event::Reached(Milestone::Loader), 3.0);
        assert_eq!(p.reached[&Milestone::Loader], 2.0);
    }

    #[test]
    fn node_passes_on_marker_and_fails_on_failure() {
        let mut p = Progress::default();
        assert_eq!(p.verdict(&Role::Node, None), None);
        p.apply(Event::MarkerOk(MarkerLine::default()), 9.0);
        assert_eq!(p.verdict(&Role::Node, None), Some(Verdict::Pass));
        let mut p = Progress::default();
        p.apply(Event::Failed("fetch stage failed".into()), 9.0);
        assert_eq!(
            p.verdict(&Role::Node, None),
            Some(Verdict::Fail("fetch stage failed".into()))
        );
    }

    #[test]
    fn the_loader_stage_lasts_until_the_kernel_or_an_end() {
        let mut p = Progress::default();
        assert!(!p.in_loader(), "firmware still");
        p.apply(Event::Reached(Milestone::Dhcp), 1.0);
        p.apply(Event::Reached(Milestone::Loader), 2.0);
        assert!(p.in_loader());
        let mut handed_back = p.clone();
        handed_back.apply(Event::LocalBoot, 3.0);
        assert!(!handed_back.in_loader(), "a local boot is an end");
        p.apply(Event::Reached(Milestone::Kernel), 5.0);
        assert!(!p.in_loader());
    }

    #[test]
    fn stranger_must_boot_locally_without_ignition() {
        let mut p = Progress::default();
        p.apply(Event::LocalBoot, 1.0);
        assert_eq!(
            p.verdict(&Role::Stranger, None),
            None,
            "firmware found nothing yet"
        );
        p.apply(Event::Reached(Milestone::Loader), 2.0);
        assert_eq!(p.verdict(&Role::Stranger, None), Some(Verdict::Pass));
        p.apply(Event::Reached(Milestone::Ignition), 4.0);
        assert!(matches!(
            p.verdict(&Role::Stranger, None),
            Some(Verdict::Fail(_))
        ));
    }

    #[test]
    fn intruder_passes_only_when_refused() {
        let mut p = Progress::default();
        p.apply(Event::Failed("fetch stage failed".into()), 5.0);
        assert_eq!(p.verdict(&intruder(), None), Some(Verdict::Pass));
        let mut p = Progress::default();
        p.apply(Event::MarkerOk(MarkerLine::default()), 5.0);
        assert!(
            matches!(p.verdict(&intruder(), None), Some(Verdict::Fail(w)) if w.contains("cp2"))
        );
    }

    #[test]
    fn real_flatcar_nodes_finish_on_beacons() {
        let mut p = Progress::default();
        p.beacon("install-started", 40.0);
        assert_eq!(p.verdict(&Role::Node, None), None);
        assert_eq!(
            p.state(&Role::Node, None),
            "booting (beacon install-started)"
        );
        p.beacon(Beacon::InstallDone.name(), 90.0);
        assert_eq!(p.verdict(&Role::Node, None), Some(Verdict::Pass));
        assert_eq!(p.verdict(&Role::Node, Some(Beacon::CiliumReady)), None);
        p.beacon("cilium-ready", 400.0);
        assert_eq!(
            p.verdict(&Role::Node, Some(Beacon::CiliumReady)),
            Some(Verdict::Pass)
        );
    }

    #[test]
    fn unfinished_names_the_last_milestone() {
        let mut p = Progress::default();
        p.apply(Event::Reached(Milestone::Kernel), 5.0);
        let v = p.unfinished(&Role::Node, None, "no marker after 120 s");
        assert_eq!(
            v,
            Verdict::Fail("no marker after 120 s (last milestone: kernel)".into())
        );
    }
}
