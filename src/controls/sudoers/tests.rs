//! The reader against every spelling from issue 9, as named table cases: (path, bytes) in,
//! verdict out, with no host at all.

use std::ffi::OsString;
use std::os::unix::ffi::OsStringExt;
use std::path::{Path, PathBuf};

use super::*;

fn person(name: &str, uid: u32, groups: &[(&str, u32)]) -> Identity {
    Identity {
        name: name.into(),
        uid: Some(uid),
        gids: groups.iter().map(|g| g.1).collect(),
        groups: groups.iter().map(|g| g.0.to_string()).collect(),
    }
}

/// The verdict for core on host `vm`, main file first, drop-ins under /etc/sudoers.d.
fn verdict(files: &[(&[u8], &[u8])]) -> Verdict {
    let mut set = FileSet::default();
    for (path, bytes) in files {
        let path = PathBuf::from(OsString::from_vec(path.to_vec()));
        if let Ok(name) = path.strip_prefix("/etc/sudoers.d") {
            let names = set.dirs.entry(PathBuf::from("/etc/sudoers.d")).or_default();
            names.push(name.as_os_str().to_os_string());
        }
        set.files.insert(path, bytes.to_vec());
    }
    let main = PathBuf::from(OsString::from_vec(files[0].0.to_vec()));
    let mut source = Overlaid {
        files: &set,
        overlay: None,
    };
    let sudoers = load(&main, &mut source, Some("vm")).unwrap();
    let core = person(
        "core",
        500,
        &[("core", 500), ("wheel", 10), ("docker", 233)],
    );
    let targets = [
        person("root", 0, &[("root", 0)]),
        person("bob", 501, &[("bob", 501)]),
    ];
    let verdict = judge(&sudoers, &core, &targets, Some("vm"));
    assert!(verdict.unreadable.is_empty(), "{:?}", verdict.unreadable);
    verdict
}

const MAIN: &[u8] = b"/etc/sudoers";
const OURS: (&[u8], &[u8]) = (b"/etc/sudoers.d/core-passwd", b"core ALL=(ALL) ALL\n");

/// Flatcar's baselayout: core NOPASSWD, then the drop-ins.
const BASELAYOUT: &[u8] =
    b"root ALL=(ALL) ALL\n%wheel ALL=(ALL) ALL\ncore ALL=(ALL) NOPASSWD: ALL\n#includedir /etc/sudoers.d\n";

/// Every spelling from issue 9 and its neighbours: (name, drop-in `zz` after core-passwd,
/// passwordless according to sudo 1.9.13).
const LATER_DROPIN: &[(&str, &str, bool)] = &[
    (
        "nopasswd_without_space",
        "core ALL=(ALL) NOPASSWD:ALL",
        true,
    ),
    ("no_runas_part", "core ALL=NOPASSWD:ALL", true),
    ("tag_list", "core ALL=(ALL) NOPASSWD:SETENV: ALL", true),
    (
        "tag_list_other_order",
        "core ALL=(ALL) SETENV:NOPASSWD:ALL",
        true,
    ),
    (
        "tags_carry_over",
        "core ALL=(ALL) NOPASSWD: /usr/bin/id, /usr/bin/whoami",
        true,
    ),
    (
        "passwd_resets_the_tag",
        "core ALL=(ALL) NOPASSWD: /usr/bin/id, PASSWD: ALL",
        false,
    ),
    ("defaults_runas_root", "Defaults>root !authenticate", true),
    (
        "defaults_runas_other_user",
        "Defaults>bob !authenticate",
        true,
    ),
    (
        "defaults_runas_nobody_named",
        "Defaults>nobody !authenticate",
        false,
    ),
    ("defaults_user", "Defaults:core !authenticate", true),
    ("defaults_user_group", "Defaults:%wheel !authenticate", true),
    ("defaults_host_this", "Defaults@vm !authenticate", true),
    (
        "defaults_host_other",
        "Defaults@elsewhere !authenticate",
        false,
    ),
    (
        "defaults_command",
        "Defaults!/usr/bin/id !authenticate",
        true,
    ),
    (
        "defaults_command_alias",
        "Cmnd_Alias C = /usr/bin/id\nDefaults!C !authenticate",
        true,
    ),
    ("defaults_global", "Defaults !authenticate", true),
    (
        "defaults_global_then_on_again",
        "Defaults !authenticate\nDefaults authenticate",
        false,
    ),
    (
        "authenticate_with_a_value_is_ignored",
        "Defaults:core authenticate=false",
        false,
    ),
    (
        "runas_before_user_in_file_order",
        "Defaults>root !authenticate\nDefaults:core authenticate",
        false,
    ),
    (
        "command_scope_applies_last",
        "Defaults!/usr/bin/id !authenticate\nDefaults:core authenticate",
        true,
    ),
    (
        "passwd_tag_beats_defaults",
        "Defaults:core !authenticate\ncore ALL=(ALL) PASSWD: ALL",
        false,
    ),
    ("quoted_user", "\"core\" ALL=(ALL) NOPASSWD: ALL", true),
    ("escaped_user", "co\\re ALL=(ALL) NOPASSWD: ALL", true),
    ("uid", "#500 ALL=(ALL) NOPASSWD: ALL", true),
    ("group", "%wheel ALL=(ALL) NOPASSWD: ALL", true),
    ("gid", "%#233 ALL=(ALL) NOPASSWD: ALL", true),
    (
        "user_alias",
        "User_Alias ADMINS = bob, core\nADMINS ALL=(ALL) NOPASSWD: ALL",
        true,
    ),
    ("all_but_core", "ALL, !core ALL=(ALL) NOPASSWD: ALL", false),
    (
        "negated_alias_alone_matches_nobody",
        "User_Alias A = bob\n!A ALL=(ALL) NOPASSWD: ALL",
        false,
    ),
    (
        "all_but_an_alias",
        "User_Alias A = bob\nALL, !A ALL=(ALL) NOPASSWD: ALL",
        true,
    ),
    (
        "runas_alias",
        "Runas_Alias OP = bob\ncore ALL=(OP) NOPASSWD: ALL",
        true,
    ),
    (
        "runas_other_user",
        "core ALL=(bob) NOPASSWD: /usr/bin/id",
        true,
    ),
    (
        "cmnd_alias",
        "Cmnd_Alias C = /usr/bin/id -u\ncore ALL=(ALL) NOPASSWD: C",
        true,
    ),
    (
        "host_alias_elsewhere",
        "Host_Alias H = elsewhere\ncore H=(ALL) NOPASSWD: ALL",
        false,
    ),
    (
        "host_alias_here",
        "Host_Alias H = elsewhere, vm\ncore H=(ALL) NOPASSWD: ALL",
        true,
    ),
    (
        "negated_command_leaves_the_rest",
        "core ALL=(ALL) NOPASSWD: ALL, !/usr/bin/id",
        true,
    ),
    (
        "continuation_line",
        "core ALL=(ALL) \\\n  NOPASSWD: ALL",
        true,
    ),
    (
        "comment_does_not_continue",
        "# note \\\ncore ALL=(ALL) NOPASSWD: ALL",
        true,
    ),
    (
        "second_privilege",
        "core elsewhere = ALL : vm = NOPASSWD: ALL",
        true,
    ),
    (
        "options_before_tags",
        "core ALL=(ALL) CWD=* NOPASSWD: ALL",
        true,
    ),
    (
        "latin1_comment",
        "# caf\u{e9}\ncore ALL=(ALL) NOPASSWD: ALL",
        true,
    ),
    ("someone_else", "bob ALL=(ALL) NOPASSWD: ALL", false),
    ("runas_by_uid", "core ALL=(#501) NOPASSWD: /usr/bin/id", true),
    ("runas_by_group", "core ALL=(%bob) NOPASSWD: /usr/bin/id", true),
    (
        "runas_default_moves_the_target",
        "Defaults runas_default=bob\ncore ALL = NOPASSWD: /usr/bin/id\ncore ALL = (root) PASSWD: /usr/bin/id",
        true,
    ),
    (
        "sudoedit",
        "core ALL=(ALL) NOPASSWD: sudoedit /etc/motd",
        true,
    ),
    (
        "digest",
        "core ALL=(ALL) NOPASSWD: sha224:0123abcd /usr/bin/id",
        true,
    ),
    (
        "escaped_comma_in_args",
        "core ALL=(ALL) NOPASSWD: /usr/bin/printf a\\,b",
        true,
    ),
    (
        "value_with_colons",
        "Defaults secure_path=/usr/sbin:/usr/bin, !authenticate",
        true,
    ),
    ("password_again", "core ALL=(ALL) ALL", false),
];

#[test]
fn later_dropins_as_sudo_reads_them() {
    for (name, text, passwordless) in LATER_DROPIN {
        let found = verdict(&[
            (MAIN, BASELAYOUT),
            OURS,
            (b"/etc/sudoers.d/zz", text.as_bytes()),
        ]);
        assert_eq!(
            found.passwordless(),
            *passwordless,
            "{name}: {:?}",
            found.grants
        );
    }
}

#[test]
fn our_dropin_wins_over_the_baselayout() {
    assert!(!verdict(&[(MAIN, BASELAYOUT), OURS]).passwordless());
    assert!(verdict(&[(MAIN, BASELAYOUT)]).passwordless());
}

#[test]
fn a_rule_after_the_includedir_comes_after_the_dropins() {
    let main = b"#includedir /etc/sudoers.d\ncore ALL=(ALL) NOPASSWD: ALL\n";
    let found = verdict(&[(MAIN, main), OURS]);
    assert!(found.passwordless());
    assert_eq!(found.grants[0].rule.location(), "/etc/sudoers:2");
}

#[test]
fn a_dropin_whose_name_is_not_utf8_is_read() {
    let found = verdict(&[
        (MAIN, BASELAYOUT),
        OURS,
        (
            b"/etc/sudoers.d/\xffadmins",
            b"core ALL=(ALL) NOPASSWD: ALL\n",
        ),
    ]);
    assert!(found.passwordless());
}

#[test]
fn dotted_and_backup_names_are_not_read() {
    for name in [&b"/etc/sudoers.d/zz.bak"[..], b"/etc/sudoers.d/zz~"] {
        let found = verdict(&[(MAIN, BASELAYOUT), OURS, (name, b"core ALL=NOPASSWD:ALL\n")]);
        assert!(!found.passwordless());
    }
}

#[test]
fn a_defaults_grant_names_the_defaults_line() {
    let found = verdict(&[
        (MAIN, BASELAYOUT),
        OURS,
        (b"/etc/sudoers.d/zz", b"\nDefaults>root !authenticate\n"),
    ]);
    let grant = &found.grants[0];
    assert_eq!(grant.decided_by().location(), "/etc/sudoers.d/zz:2");
    assert_eq!(grant.rule.location(), "/etc/sudoers.d/core-passwd:1");
}

#[test]
fn an_image_of_unknown_name_is_judged_on_every_host_it_may_boot_as() {
    let mut set = FileSet::default();
    let main = b"core ALL=(ALL) ALL\ncore ALL, !db1 = (ALL) NOPASSWD: ALL\n";
    set.files
        .insert(PathBuf::from("/etc/sudoers"), main.to_vec());
    let mut source = Overlaid {
        files: &set,
        overlay: None,
    };
    let sudoers = load(Path::new("/etc/sudoers"), &mut source, None).unwrap();
    let core = person("core", 500, &[("core", 500)]);
    let targets = [person("root", 0, &[("root", 0)])];
    let unknown = judge(&sudoers, &core, &targets, None);
    assert!(unknown.passwordless());
    assert_eq!(unknown.grants[0].on.as_deref(), Some("any other host"));
    assert!(!judge(&sudoers, &core, &targets, Some("db1")).passwordless());
}

#[test]
fn what_sudo_l_lists() {
    let found = verdict(&[(MAIN, BASELAYOUT), OURS]);
    assert!(found.lists_nopasswd && !found.lists_no_authenticate);
    let found = verdict(&[(MAIN, b"core ALL=(ALL) ALL\nDefaults>bob !authenticate\n")]);
    assert!(!found.lists_nopasswd && found.lists_no_authenticate);
}

#[test]
fn include_lines_are_blanked_for_visudo() {
    let text = b"a ALL=ALL\n#includedir /etc/sudoers.d\n  @include x\n#include_not\nb ALL=ALL";
    assert_eq!(
        without_includes(text),
        b"a ALL=ALL\n\n\n#include_not\nb ALL=ALL".to_vec()
    );
}

#[test]
fn the_guide_snippet_has_the_same_statements() {
    assert!(same_statements(
        b"core\tALL=(ALL) \tALL\n",
        b"# x\ncore ALL=(ALL) ALL\n"
    ));
    assert!(!same_statements(
        b"core ALL=(ALL) NOPASSWD: ALL\n",
        b"core ALL=(ALL) ALL\n"
    ));
}
