//! grub_cfg: unit tests of the OEM grub.cfg editor.

use super::*;

fn has(args: &[String]) -> bool {
    args.iter().any(|a| a == "nosmt")
}

#[test]
fn grub_cfg_lines_are_kept_and_never_duplicated() {
    // Already there, in Ignition's form: nothing to add.
    let grub = "set oem_id=\"qemu\"\nset linux_append=\"$linux_append nosmt\"\n";
    assert!(has(&linux_append(grub)));
    // Inside a conditional block it does not count.
    let grub =
        "if [ \"$grub_platform\" = efi ]; then\n  set linux_append=\"$linux_append nosmt\"\nfi\n";
    assert!(!has(&linux_append(grub)));
    let edited = add_argument(grub, "nosmt", &[]);
    assert!(edited.starts_with(grub), "{edited}");
    assert!(has(&linux_append(&edited)));
    // A later line that replaces linux_append loses the earlier argument: move, never copy.
    let grub = "set linux_append=\"$linux_append nosmt\"\nset linux_append=\"flatcar.autologin\"\n";
    assert!(!has(&linux_append(grub)));
    let edited = add_argument(grub, "nosmt", &[]);
    assert_eq!(
        edited,
        "set linux_append=\"flatcar.autologin\"\nset linux_append=\"$linux_append nosmt\"\n"
    );
    assert_eq!(
        linux_append(&edited),
        ["flatcar.autologin", "nosmt"],
        "the earlier argument is kept"
    );
    // Comments do not open blocks ("for this platform").
    let grub = "set oem_id=\"qemu\"\nset linux_append=\"$linux_append nosmt\" # for SMT\n";
    assert!(has(&linux_append(grub)));
    // No trailing newline: the other lines are kept byte for byte.
    assert_eq!(
        add_argument("set oem_id=\"qemu\"", "nosmt", &[]),
        "set oem_id=\"qemu\"\nset linux_append=\"$linux_append nosmt\"\n"
    );
    // From off to auto, the agent's own nosmt line is replaced; mitigations=off later wins.
    let edited = add_argument(
        "set linux_append=\"$linux_append nosmt\"\n",
        "mitigations=auto,nosmt",
        &["nosmt"],
    );
    assert_eq!(
        edited,
        "set linux_append=\"$linux_append mitigations=auto,nosmt\"\n"
    );
    assert_eq!(
        linux_append(&format!(
            "{edited}set linux_append=\"$linux_append mitigations=off\"\n"
        )),
        ["mitigations=auto,nosmt", "mitigations=off"]
    );
}

fn autologin(word: &str) -> bool {
    word == "flatcar.autologin" || word.starts_with("flatcar.autologin=")
}

/// Flatcar's build_library/oem/azure/grub.cfg, byte for byte.
const AZURE: &str = "# Flatcar GRUB settings\n\nset oem_id=\"azure\"\nset linux_append=\"flatcar.autologin\"\n\n# Azure only has a serial console.\nserial --unit=0 --speed=115200 --word=8 --parity=no\nterminal_input serial\nterminal_output serial\n\nif [ \"$grub_cpu\" = arm64 ]; then\n  set linux_console=\"console=tty1 console=ttyAMA0,115200n8 earlycon=pl011,0xeffec000\"\nelse\n  set linux_console=\"console=tty1 console=ttyS0,115200n8 earlyprintk=ttyS0,115200\"\nfi\n";

#[test]
fn removing_an_argument_keeps_every_other_word_and_line() {
    // The OEM form replaces linux_append: it keeps replacing it, now with nothing.
    let edited = remove_argument(AZURE, autologin);
    assert_eq!(
        edited,
        AZURE.replace(
            "set linux_append=\"flatcar.autologin\"\n",
            "set linux_append=\"\"\n"
        )
    );
    assert!(linux_append(&edited).is_empty());
    assert!(mentions(&edited, autologin).is_empty());
    assert_eq!(mentions(AZURE, autologin), [4]);
    // Appended among others, with a TTY, quoted or not, indented in a block, with a comment.
    let grub = "set linux_append=\"$linux_append  console=ttyS0 flatcar.autologin=ttyS0 nosmt\" # x\n\
                if true; then\n  set linux_append='$linux_append flatcar.autologin'\nfi\n\
                set linux_append=flatcar.autologin\nset linux_append=\"$linux_append flatcar.autologin\"";
    assert_eq!(
        remove_argument(grub, autologin),
        "set linux_append=\"$linux_append console=ttyS0 nosmt\" # x\nif true; then\n  set linux_append='$linux_append'\nfi\n\
         set linux_append=\n",
        "a line left with only $linux_append goes (in a block it stays, a block needs a command); \
         one that replaced it still replaces it"
    );
    // Nothing to remove: the very same bytes, however odd.
    let odd = "set  linux_append=\"$linux_append nosmt\"\r\n\tset oem_id=qemu";
    assert_eq!(remove_argument(odd, autologin), odd);
    // A one-line conditional is not edited, but found.
    let one_line =
        "set oem_id=\"qemu\"\nif true; then set linux_append=\"flatcar.autologin\"; fi\n";
    assert_eq!(remove_argument(one_line, autologin), one_line);
    assert_eq!(mentions(one_line, autologin), [2]);
    // A comment naming it is no argument.
    assert!(mentions("# add flatcar.autologin here\n", autologin).is_empty());
    // A different lockdown level out, the wanted one added after it.
    let grub = "set linux_append=\"$linux_append lockdown=none\"\n";
    let edited = remove_argument(grub, |w| {
        w.starts_with("lockdown=") && w != "lockdown=integrity"
    });
    assert_eq!(edited, "");
    assert_eq!(
        add_argument(&edited, "lockdown=integrity", &[]),
        "set linux_append=\"$linux_append lockdown=integrity\"\n"
    );
}

/// Every edit leaves a file GRUB parses: `grub-script-check` (GRUB's own parser) accepts the
/// results, where an emptied `then` would be a syntax error. Needs grub-common's tool.
#[test]
fn edited_files_still_parse_as_grub_script() {
    let Some(check) = ["/usr/bin/grub-script-check", "/usr/sbin/grub-script-check"]
        .into_iter()
        .find(|p| std::path::Path::new(p).is_file())
    else {
        eprintln!("grub-script-check is not installed: GRUB syntax not checked");
        return;
    };
    let block = "if [ \"$grub_platform\" = efi ]; then\n  set linux_append=\"$linux_append flatcar.autologin\"\nfi\n";
    let lockdown = "set linux_append=\"$linux_append lockdown=none\"\n";
    let edited = [
        remove_argument(AZURE, autologin),
        remove_argument(block, autologin),
        add_argument(
            &remove_argument(lockdown, |w| w.starts_with("lockdown=")),
            "lockdown=integrity",
            &[],
        ),
    ];
    let dir = tempfile::tempdir().unwrap();
    for (index, text) in edited.iter().enumerate() {
        let file = dir.path().join(format!("{index}.cfg"));
        std::fs::write(&file, text).unwrap();
        let out = std::process::Command::new(check)
            .arg(&file)
            .output()
            .unwrap();
        assert!(out.status.success(), "{text}\n{out:?}");
    }
    // The check can fail: an emptied block is refused.
    let file = dir.path().join("empty.cfg");
    std::fs::write(&file, "if true; then\nfi\n").unwrap();
    let out = std::process::Command::new(check)
        .arg(&file)
        .output()
        .unwrap();
    assert!(!out.status.success());
}
