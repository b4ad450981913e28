//! sshd-socket: unit tests (live plans from systemd's facts).

use super::*;

fn status(unit_file_state: &str, active_state: &str) -> UnitStatus {
    UnitStatus {
        load_state: "masked".into(),
        active_state: active_state.into(),
        unit_file_state: unit_file_state.into(),
        need_daemon_reload: false,
        drop_in_paths: Vec::new(),
    }
}

fn kinds(plan: &Plan) -> Vec<&'static str> {
    plan.actions.iter().map(|a| a.change().kind).collect()
}

#[test]
fn the_generators_runtime_mask_alone_still_gets_the_persistent_mask() {
    // The first boot: the generator masked the unit in /run/systemd/generator.early only.
    let plan = plan_live(true, &status("masked-runtime", "inactive"), None);
    assert_eq!(kinds(&plan), ["mask-unit", "daemon-reload"]);
}

#[test]
fn a_runtime_mask_with_the_etc_mask_is_masked_and_nothing_is_done() {
    let etc = Path::new(DEV_NULL);
    let plan = plan_live(true, &status("masked-runtime", "inactive"), Some(etc));
    assert!(plan.actions.is_empty(), "{plan:?}");
    assert_eq!(plan.summary, "sshd.socket is masked and stopped");
    // Unmasking takes the /etc mask away; the reload runs the generator on the new policy.
    let plan = plan_live(false, &status("masked-runtime", "inactive"), Some(etc));
    assert_eq!(kinds(&plan), ["unmask-unit", "daemon-reload", "start-unit"]);
}
