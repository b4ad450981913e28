//! sudoers configurations for the differential test: a hand list with every spelling from issue 9,
//! and a seeded generator over the grammar (users, hosts, runas lists, tags, commands, aliases,
//! scoped Defaults, include directives, drop-in names as bytes, spacing and continuation lines).
//!
//! Names the generator may use, and what the probe tries: runas targets root and bob (daemon is
//! never named: it stands for "any other user"), commands /usr/bin/id, /usr/bin/id -u and
//! /usr/bin/whoami (/usr/bin/true is never named: it stands for "any other command").

/// One configuration: the main file (`/etc/sudoers`) and drop-ins for `/etc/sudoers.d`.
#[derive(Debug, Clone)]
pub struct Case {
    pub name: String,
    pub main: Vec<u8>,
    /// `(file name as bytes, content)`
    pub dropins: Vec<(Vec<u8>, Vec<u8>)>,
    /// sudo.conf names /etc/sudoers explicitly (`sudoers_file=`) or leaves the default.
    pub named_in_sudo_conf: bool,
}

/// The aliases every main file defines, before anything uses them.
pub fn aliases(hostname: &str) -> String {
    format!(
        "User_Alias ADMINS = bob, core\nUser_Alias OTHERS = bob\n\
         Host_Alias HERE = {hostname}\nHost_Alias THERE = elsewhere\n\
         Runas_Alias OPS = #501\nCmnd_Alias IDS = /usr/bin/id, /usr/bin/whoami\n"
    )
}

/// Lines that keep sudo quiet and the probe honest, in every main file.
const PREAMBLE: &str = "Defaults !syslog, !lecture\nroot ALL=(ALL:ALL) ALL\n";
/// Flatcar's baselayout rule, which core-passwd must override.
const BASELAYOUT_CORE: &str = "core ALL=(ALL) NOPASSWD: ALL\n";

fn main_file(hostname: &str, before: &str, include: &str, after: &str) -> Vec<u8> {
    format!(
        "{PREAMBLE}{}{BASELAYOUT_CORE}{before}{include}\n{after}",
        aliases(hostname)
    )
    .into_bytes()
}

/// Every spelling named in issue 9, and their neighbours. Each is a later drop-in (`zz-late`)
/// unless the name says otherwise.
pub fn hand_list(hostname: &str) -> Vec<Case> {
    let later = [
        "core ALL=(ALL) NOPASSWD:ALL",
        "core ALL=(ALL) NOPASSWD: ALL",
        "core ALL=NOPASSWD:ALL",
        "core ALL = NOPASSWD : ALL",
        "core ALL=(ALL) NOPASSWD:SETENV: ALL",
        "core ALL=(ALL) SETENV:NOPASSWD:ALL",
        "core ALL=(ALL:ALL) NOEXEC:NOPASSWD: ALL",
        "core ALL=(ALL) NOPASSWD: /usr/bin/id, /usr/bin/whoami",
        "core ALL=(ALL) NOPASSWD: /usr/bin/id, PASSWD: ALL",
        "core ALL=(ALL) NOPASSWD: ALL, PASSWD: /usr/bin/id",
        "core ALL=(ALL) NOPASSWD: ALL, !/usr/bin/id",
        "core ALL=(ALL) NOPASSWD: /usr/bin/id -u",
        "core ALL=(ALL) NOPASSWD: /usr/bin/id \"\"",
        "core ALL=(bob) NOPASSWD: /usr/bin/whoami",
        "core ALL=(OPS) NOPASSWD: ALL",
        "core ALL=(ALL, !root) NOPASSWD: ALL",
        "core ALL=(:core) NOPASSWD: ALL",
        "core ALL=(ALL) NOPASSWD: IDS",
        "core ALL=(ALL) NOPASSWD: ALL, !IDS",
        "Defaults>root !authenticate",
        "Defaults> root !authenticate",
        "Defaults>bob !authenticate",
        "Defaults>OPS !authenticate",
        "Defaults:core !authenticate",
        "Defaults:core authenticate=false",
        "Defaults:%wheel !authenticate",
        "Defaults:ADMINS !authenticate",
        "Defaults:OTHERS !authenticate",
        "Defaults:ALL,!core !authenticate",
        &format!("Defaults@{hostname} !authenticate"),
        "Defaults@elsewhere !authenticate",
        "Defaults@HERE !authenticate",
        "Defaults!/usr/bin/id !authenticate",
        "Defaults!IDS !authenticate",
        "Defaults !authenticate",
        "Defaults\t!authenticate, env_reset",
        "Defaults !!authenticate",
        "Defaults !authenticate\nDefaults authenticate",
        "Defaults>root !authenticate\nDefaults:core authenticate",
        "Defaults:core !authenticate\nDefaults>root authenticate",
        "Defaults!/usr/bin/id !authenticate\nDefaults:core authenticate",
        "Defaults:core !authenticate\ncore ALL=(ALL) PASSWD: ALL",
        "\"core\" ALL=(ALL) NOPASSWD: ALL",
        "co\\re ALL=(ALL) NOPASSWD: ALL",
        "#500 ALL=(ALL) NOPASSWD: ALL",
        "%wheel ALL=(ALL) NOPASSWD: ALL",
        "%#233 ALL=(ALL) NOPASSWD: ALL",
        "%core ALL=(ALL) NOPASSWD: ALL",
        "ADMINS ALL=(ALL) NOPASSWD: ALL",
        "ALL, !core ALL=(ALL) NOPASSWD: ALL",
        "!OTHERS ALL=(ALL) NOPASSWD: ALL",
        "ALL, !OTHERS ALL=(ALL) NOPASSWD: ALL",
        "bob ALL=(ALL) NOPASSWD: ALL",
        "core THERE=(ALL) NOPASSWD: ALL",
        "core HERE=(ALL) NOPASSWD: ALL",
        "core ALL, !HERE=(ALL) NOPASSWD: ALL",
        &format!("core elsewhere = ALL : {hostname} = NOPASSWD: ALL"),
        "core ALL=(ALL) \\\n    NOPASSWD: ALL",
        "# a comment that ends in a backslash \\\ncore ALL=(ALL) NOPASSWD: ALL",
        "core ALL=(ALL) ALL # NOPASSWD: ALL",
        "core ALL=(ALL) NOPASSWD: ALL\r",
        "# windows\r\ncore ALL=(ALL) NOPASSWD:ALL\r",
        "core ALL=(ALL) CWD=* NOPASSWD: ALL",
        "core ALL=(#501) NOPASSWD: /usr/bin/whoami",
        "core ALL=(%bob) NOPASSWD: /usr/bin/whoami",
        "Defaults runas_default=bob\ncore ALL = NOPASSWD: /usr/bin/id\ncore ALL = (root) PASSWD: /usr/bin/id",
        "Defaults:core runas_default=bob\ncore ALL = NOPASSWD: /usr/bin/id",
        "core ALL=(ALL, !OPS) NOPASSWD: ALL",
        "Cmnd_Alias NOTID = !/usr/bin/id\ncore ALL=(ALL) NOPASSWD: ALL, NOTID",
        "Defaults:core env_keep += \"LANG LC_ALL\", !authenticate",
        "Defaults:core env_keep+=LANG\nDefaults:core !authenticate",
        "Defaults:core env_reset, !authenticate, !lecture",
        "Defaults secure_path=/usr/sbin:/usr/bin, !authenticate",
        "Defaults:core timestamp_timeout=5,!authenticate",
        "core ALL=(ALL) ALL",
        // Lines sudo cannot parse: it skips them (and warns); the agent fails closed.
        "%\"wheel\" ALL=(ALL) NOPASSWD: ALL",
        "core ALL=(ALL) NOPASSWD: ALL\nfoo bar baz",
    ];
    let include = "#includedir /etc/sudoers.d";
    let mut cases: Vec<Case> = later
        .iter()
        .enumerate()
        .map(|(i, text)| Case {
            name: format!("hand {i}: later drop-in `{}`", text.replace('\n', "\\n")),
            main: main_file(hostname, "", include, ""),
            dropins: vec![(b"zz-late".to_vec(), format!("{text}\n").into_bytes())],
            named_in_sudo_conf: true,
        })
        .collect();
    let mut add = |name: &str, main: Vec<u8>, dropins: Vec<(Vec<u8>, Vec<u8>)>| {
        cases.push(Case {
            name: format!("hand: {name}"),
            main,
            dropins,
            named_in_sudo_conf: name.len() % 2 == 0,
        })
    };
    let nopasswd = b"core ALL=(ALL) NOPASSWD: ALL\n".to_vec();
    add(
        "flatcar as shipped, core-passwd in place",
        main_file(hostname, "", include, ""),
        vec![],
    );
    add(
        "rule in the main file after its #includedir",
        main_file(hostname, "", include, "core ALL=(ALL) NOPASSWD: ALL\n"),
        vec![],
    );
    add(
        "@includedir, then a rule",
        main_file(
            hostname,
            "",
            "@includedir /etc/sudoers.d",
            "%wheel ALL=NOPASSWD:ALL\n",
        ),
        vec![],
    );
    add(
        "relative @includedir",
        main_file(hostname, "", "@includedir sudoers.d", ""),
        vec![(b"zz-late".to_vec(), nopasswd.clone())],
    );
    add(
        "no #includedir at all",
        main_file(hostname, "", "", ""),
        vec![],
    );
    add(
        "drop-in whose name is not UTF-8",
        main_file(hostname, "", include, ""),
        vec![(b"\xffadmins".to_vec(), nopasswd.clone())],
    );
    add(
        "drop-in named before core-passwd",
        main_file(hostname, "", include, ""),
        vec![(b"00-early".to_vec(), nopasswd.clone())],
    );
    add(
        "upper-case name sorts before core-passwd",
        main_file(hostname, "", include, ""),
        vec![(b"Zz".to_vec(), nopasswd.clone())],
    );
    add(
        "dotted name is skipped",
        main_file(hostname, "", include, ""),
        vec![(b"zz.disabled".to_vec(), nopasswd.clone())],
    );
    add(
        "backup name is skipped",
        main_file(hostname, "", include, ""),
        vec![(b"zz-late~".to_vec(), nopasswd.clone())],
    );
    add(
        "@include of one drop-in after the directory",
        main_file(hostname, "", include, "@include sudoers.d/00-early\n"),
        vec![(b"00-early".to_vec(), nopasswd.clone())],
    );
    add(
        "latin-1 bytes in a comment",
        main_file(hostname, "", include, ""),
        vec![(
            b"zz-late".to_vec(),
            b"# caf\xe9\ncore ALL=(ALL) NOPASSWD: ALL\n".to_vec(),
        )],
    );
    add(
        "@include with %h names a file includedir would skip",
        main_file(hostname, "", include, "@include /etc/sudoers.d/host.%h\n"),
        vec![(format!("host.{hostname}").into_bytes(), nopasswd.clone())],
    );
    add(
        "quoted @include path",
        main_file(
            hostname,
            "",
            include,
            "@include \"/etc/sudoers.d/zz late\"\n",
        ),
        vec![(b"zz late".to_vec(), nopasswd.clone())],
    );
    add(
        "Defaults !authenticate before the drop-ins",
        main_file(hostname, "Defaults:core !authenticate\n", include, ""),
        vec![],
    );
    cases
}

/// xorshift64*: small, seeded, the same sequence on every machine.
pub struct Rng(u64);

impl Rng {
    pub fn new(seed: u64) -> Rng {
        Rng(seed.max(1))
    }

    fn next(&mut self) -> u64 {
        self.0 ^= self.0 >> 12;
        self.0 ^= self.0 << 25;
        self.0 ^= self.0 >> 27;
        self.0.wrapping_mul(0x2545_f491_4f6c_dd1d)
    }

    fn below(&mut self, n: usize) -> usize {
        (self.next() % n as u64) as usize
    }

    fn pick<'a>(&mut self, items: &[&'a str]) -> &'a str {
        items[self.below(items.len())]
    }

    fn chance(&mut self, percent: usize) -> bool {
        self.below(100) < percent
    }
}

/// One generated configuration.
pub fn generated(rng: &mut Rng, hostname: &str, index: usize) -> Case {
    let include = rng
        .pick(&[
            "#includedir /etc/sudoers.d",
            "#includedir /etc/sudoers.d",
            "@includedir /etc/sudoers.d",
            "@includedir sudoers.d",
            "",
        ])
        .to_owned();
    let before = lines(rng, hostname, 2);
    let after = if rng.chance(30) {
        lines(rng, hostname, 2)
    } else {
        String::new()
    };
    let names: [&[u8]; 7] = [
        b"00-early",
        b"50-mid",
        b"zz-late",
        b"Upper",
        b"\xfflatin",
        b"with.dot",
        b"backup~",
    ];
    let mut dropins: Vec<(Vec<u8>, Vec<u8>)> = Vec::new();
    for _ in 0..rng.below(4) {
        let name = names[rng.below(names.len())].to_vec();
        if dropins.iter().all(|(n, _)| *n != name) {
            dropins.push((name, lines(rng, hostname, 3).into_bytes()));
        }
    }
    Case {
        name: format!("generated {index}"),
        main: main_file(hostname, &before, &include, &after),
        dropins,
        named_in_sudo_conf: rng.chance(50),
    }
}

/// Up to `most` random lines (at least one).
fn lines(rng: &mut Rng, hostname: &str, most: usize) -> String {
    let mut out = String::new();
    for _ in 0..=rng.below(most) {
        let line = if rng.chance(30) {
            defaults(rng, hostname)
        } else {
            rule(rng, hostname)
        };
        out.push_str(&spacing(rng, &line));
        out.push('\n');
    }
    out
}

fn rule(rng: &mut Rng, hostname: &str) -> String {
    let users = list(
        rng,
        &[
            "core", "\"core\"", "co\\re", "#500", "%wheel", "%#233", "%core", "ADMINS", "OTHERS",
            "bob", "ALL", "!core", "!OTHERS", "!ADMINS",
        ],
        2,
    );
    let mut privileges = Vec::new();
    for _ in 0..=rng.below(2) {
        let hosts = list(
            rng,
            &[
                "ALL",
                "ALL",
                hostname,
                "elsewhere",
                "HERE",
                "THERE",
                "!elsewhere",
                "!HERE",
            ],
            2,
        );
        let mut specs = Vec::new();
        for _ in 0..=rng.below(3) {
            let mut spec = String::new();
            if rng.chance(60) {
                let runas = rng.pick(&[
                    "(ALL)",
                    "(ALL:ALL)",
                    "(root)",
                    "(bob)",
                    "(OPS)",
                    "(root, bob)",
                    "(ALL, !root)",
                    "(ALL, !bob)",
                    "(ALL, !OPS)",
                    "(:core)",
                    "(#501)",
                    "(%bob)",
                ]);
                spec.push_str(runas);
                spec.push(' ');
            }
            for _ in 0..rng.below(3) {
                let tag = rng.pick(&["NOPASSWD", "NOPASSWD", "PASSWD", "SETENV", "NOEXEC", "EXEC"]);
                spec.push_str(tag);
                spec.push_str(rng.pick(&[":", ": "]));
            }
            spec.push_str(rng.pick(&[
                "ALL",
                "ALL",
                "/usr/bin/id",
                "/usr/bin/id -u",
                "/usr/bin/id \"\"",
                "/usr/bin/whoami",
                "IDS",
                "!/usr/bin/id",
                "!IDS",
            ]));
            specs.push(spec);
        }
        privileges.push(format!("{hosts} = {}", specs.join(", ")));
    }
    format!("{users} {}", privileges.join(" : "))
}

fn defaults(rng: &mut Rng, hostname: &str) -> String {
    let scope = match rng.below(6) {
        0 => String::new(),
        1 => format!(
            ":{}",
            list(
                rng,
                &["core", "%wheel", "ADMINS", "OTHERS", "bob", "#500"],
                2
            )
        ),
        2 => format!(">{}", list(rng, &["root", "bob", "OPS", "ALL"], 2)),
        3 => format!(
            "@{}",
            list(rng, &[hostname, "elsewhere", "HERE", "THERE", "ALL"], 2)
        ),
        _ => format!(
            "!{}",
            list(rng, &["/usr/bin/id", "/usr/bin/whoami", "IDS"], 2)
        ),
    };
    let setting = rng.pick(&[
        "!authenticate",
        "!authenticate",
        "authenticate",
        "!authenticate, env_reset",
        "env_reset",
        "!!authenticate",
        "env_keep += \"LANG LC_ALL\", !authenticate",
        "!lecture, authenticate",
        "runas_default=bob",
    ]);
    format!("Defaults{scope} {setting}")
}

/// `n` items of `pool` joined with commas (a negated item never comes first alone).
fn list(rng: &mut Rng, pool: &[&str], most: usize) -> String {
    let mut items: Vec<&str> = Vec::new();
    for _ in 0..=rng.below(most) {
        items.push(rng.pick(pool));
    }
    items.join(rng.pick(&[",", ", "]))
}

/// The same line written another way: tabs, spaces around `=`, a continuation line.
fn spacing(rng: &mut Rng, line: &str) -> String {
    match rng.below(6) {
        0 => line.replacen(' ', "\t", 1),
        1 => line.replacen(" = ", "=", 1),
        2 => match line.rfind(' ') {
            Some(at) if !line[..at].contains('"') => {
                format!("{} \\\n    {}", &line[..at], &line[at + 1..])
            }
            _ => line.to_owned(),
        },
        3 => format!("{line}  # trailing comment"),
        _ => line.to_owned(),
    }
}
