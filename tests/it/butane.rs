//! `pxebuild butane`: Butane (flatcar) → Ignition, checked against exact
//! expected JSON and the real `ignition-validate`.
use std::io::Write;
use std::os::unix::fs::PermissionsExt;
use std::path::{Path, PathBuf};
use std::process::{Command, Stdio};

use pxebuild::butane::{data_url, translate, Options};

use crate::harness::repo_root;

fn fixtures() -> PathBuf {
    repo_root().join("tests/fixtures/butane")
}

fn opts(files_dir: Option<&Path>, strict: bool) -> Options {
    Options {
        files_dir: files_dir.map(Path::to_path_buf),
        strict,
    }
}

/// Runs the real `ignition-validate` on `json` (required: the test fails
/// without it).
fn run_ignition_validate(json: &str) -> std::process::Output {
    let dir = tempfile::tempdir().unwrap();
    let file = dir.path().join("config.ign");
    std::fs::write(&file, json).unwrap();
    Command::new("/usr/bin/ignition-validate")
        .arg(&file)
        .output()
        .expect("running /usr/bin/ignition-validate (it must be installed)")
}

/// Asserts that the real `ignition-validate` accepts `json`. Debian's build
/// accepts 3.4.0 only under its experimental name, so 3.4.0 output is
/// validated as `3.4.0-experimental`.
fn ignition_validate(json: &str) {
    let json = json.replace(r#""version":"3.4.0""#, r#""version":"3.4.0-experimental""#);
    let out = run_ignition_validate(&json);
    assert!(
        out.status.success(),
        "ignition-validate rejected {json}:\n{}",
        String::from_utf8_lossy(&out.stderr)
    );
}

/// Asserts that the real `ignition-validate` rejects `json`, showing that the
/// matching translator error closes a real gap.
fn ignition_rejects(json: &str) -> String {
    let out = run_ignition_validate(json);
    let report = format!(
        "{}{}",
        String::from_utf8_lossy(&out.stdout),
        String::from_utf8_lossy(&out.stderr)
    );
    assert!(!out.status.success(), "ignition-validate accepted {json}");
    report
}

#[test]
fn every_case_translates_to_its_expected_json_and_validates() {
    let mut seen = 0;
    let mut entries: Vec<_> = std::fs::read_dir(fixtures().join("cases"))
        .unwrap()
        .map(|e| e.unwrap().path())
        .collect();
    entries.sort();
    for bu in entries
        .iter()
        .filter(|p| p.extension().is_some_and(|e| e == "bu"))
    {
        let yaml = std::fs::read_to_string(bu).unwrap();
        let want = std::fs::read_to_string(bu.with_extension("ign")).unwrap();
        let tr = translate(&yaml, &opts(Some(&fixtures().join("files")), true))
            .unwrap_or_else(|e| panic!("{}: {e:?}", bu.display()));
        assert_eq!(tr.json, want.trim_end(), "{}", bu.display());
        assert!(
            tr.warnings.is_empty(),
            "{}: {:?}",
            bu.display(),
            tr.warnings
        );
        let version = if yaml.contains("version: 1.1.0") {
            "3.4.0"
        } else {
            "3.3.0"
        };
        assert_eq!(tr.spec_version, version);
        ignition_validate(&tr.json);
        seen += 1;
    }
    assert_eq!(seen, 8, "number of cases");
}

const HEAD: &str = "variant: flatcar\nversion: 1.0.0\n";

/// (name, YAML after the 2-line header, expected diagnostics as displayed).
const ERRORS: &[(&str, &str, &[&str])] = &[
    ("unknown key", "storage:\n  filez: []\n", &[r#"line 4 column 3: storage.filez: unknown key "filez""#]),
    (
        "wrong types",
        "storage:\n  files:\n    - path: /a\n      overwrite: maybe\n      mode: abc\n      user: core\n",
        &[
            "line 6 column 7: storage.files.0.overwrite: expected a boolean, found a string",
            r#"line 7 column 7: storage.files.0.mode: invalid mode "abc": expected an integer or an octal literal like 0644"#,
            "line 8 column 7: storage.files.0.user: expected a mapping, found a string",
        ],
    ),
    (
        "relative paths",
        "storage:\n  files:\n    - path: etc/a\n  links:\n    - path: /l\n      target: x\n      hard: true\n",
        &[
            r#"line 5 column 7: storage.files.0.path: path must be absolute, got "etc/a""#,
            r#"line 8 column 7: storage.links.0.target: path must be absolute, got "x""#,
        ],
    ),
    (
        "duplicate paths across files, directories and links",
        "storage:\n  files:\n    - path: /a\n  directories:\n    - path: /a\n  links:\n    - path: /a\n      target: /b\n",
        &[
            r#"line 7 column 7: storage.directories.0.path: duplicate path "/a" (first defined at storage.files.0.path)"#,
            r#"line 9 column 7: storage.links.0.path: duplicate path "/a" (first defined at storage.files.0.path)"#,
        ],
    ),
    (
        "duplicate units and dropins",
        "systemd:\n  units:\n    - name: a.service\n      dropins:\n        - name: x.conf\n        - name: x.conf\n    - name: a.service\n",
        &[
            r#"line 8 column 11: systemd.units.0.dropins.1.name: duplicate dropin "x.conf" (first defined at systemd.units.0.dropins.0.name)"#,
            r#"line 9 column 7: systemd.units.1.name: duplicate unit "a.service" (first defined at systemd.units.0.name)"#,
        ],
    ),
    (
        "unit and dropin names",
        "systemd:\n  units:\n    - name: a.conf\n      dropins:\n        - name: x.service\n",
        &[
            r#"line 5 column 7: systemd.units.0.name: invalid unit name "a.conf": must end in one of .service .socket .timer .mount .target .path .slice .scope .automount .swap .device"#,
            r#"line 7 column 11: systemd.units.0.dropins.0.name: invalid dropin name "x.service": must end in .conf"#,
        ],
    ),
    (
        "quoted mode (a string in Butane too)",
        "storage:\n  files:\n    - path: /a\n      mode: \"0644\"\n",
        &[r#"line 6 column 7: storage.files.0.mode: expected an integer, found the quoted string "0644" (write the mode without quotes: 0644)"#],
    ),
    (
        "quoted mode that is no number (no hint to unquote it)",
        "storage:\n  files:\n    - path: /a\n      mode: \"rw\"\n",
        &[r#"line 6 column 7: storage.files.0.mode: expected an integer, found the quoted string "rw" (a mode is an octal number such as 0644)"#],
    ),
    (
        "mode out of range",
        "storage:\n  directories:\n    - path: /d\n      mode: 0o17777\n",
        &["line 6 column 7: storage.directories.0.mode: mode 8191 is out of range (at most 0o7777 = 4095)"],
    ),
    (
        "bad hash",
        "storage:\n  files:\n    - path: /a\n      contents:\n        source: https://x/a\n        verification:\n          hash: sha256-abc\n",
        &[r#"line 9 column 11: storage.files.0.contents.verification.hash: invalid hash "sha256-abc": expected sha512-<128 hex digits> or sha256-<64 hex digits>"#],
    ),
    (
        "two content sources",
        "storage:\n  files:\n    - path: /a\n      contents:\n        inline: x\n        source: https://x/a\n",
        &["line 6 column 7: storage.files.0.contents: only one of source, inline or local may be set (found source and inline)"],
    ),
    (
        "local without a files directory",
        "storage:\n  files:\n    - path: /a\n      contents:\n        local: motd.txt\n",
        &["line 7 column 9: storage.files.0.contents.local: local file references need a files directory (--files-dir)"],
    ),
    (
        "contents_local needs 1.1.0",
        "systemd:\n  units:\n    - name: a.service\n      contents_local: local.service\n",
        &["line 6 column 7: systemd.units.0.contents_local: contents_local requires version 1.1.0 or newer"],
    ),
    (
        "ssh_authorized_keys_local needs 1.1.0",
        "passwd:\n  users:\n    - name: core\n      ssh_authorized_keys_local: [keys.pub]\n",
        &["line 6 column 7: passwd.users.0.ssh_authorized_keys_local: ssh_authorized_keys_local requires version 1.1.0 or newer"],
    ),
    (
        "missing path",
        "storage:\n  files:\n    - mode: 0644\n",
        &[r#"line 5 column 5: storage.files.0.path: missing required key "path""#],
    ),
    (
        "http headers with a tftp source",
        "storage:\n  files:\n    - path: /a\n      contents:\n        source: tftp://h/a\n        http_headers:\n          - name: A\n",
        &["line 8 column 9: storage.files.0.contents.http_headers: http_headers are only allowed with an http or https source"],
    ),
    (
        "unsupported URL scheme",
        "ignition:\n  config:\n    replace:\n      source: ftp://h/a\n",
        &[r#"line 6 column 7: ignition.config.replace.source: unsupported or missing URL scheme in "ftp://h/a" (use http, https, tftp, s3, gs or data)"#],
    ),
    (
        "luks is not supported",
        "storage:\n  luks:\n    - name: root\n",
        &["line 4 column 3: storage.luks: not supported by pxebuild (see docs/butane.md)"],
    ),
    (
        "mount unit without a path",
        "storage:\n  filesystems:\n    - device: /dev/sda1\n      format: ext4\n      with_mount_unit: true\n",
        &["line 7 column 7: storage.filesystems.0.with_mount_unit: with_mount_unit requires path"],
    ),
    (
        "both id and name",
        "storage:\n  files:\n    - path: /a\n      user: {id: 1, name: core}\n",
        &["line 6 column 7: storage.files.0.user: set only one of id and name"],
    ),
    (
        "unsupported compression",
        "storage:\n  files:\n    - path: /a\n      contents:\n        source: https://x/a\n        compression: xz\n",
        &[r#"line 8 column 9: storage.files.0.contents.compression: unsupported compression "xz" (only gzip)"#],
    ),
    (
        "overwrite without a source",
        "storage:\n  files:\n    - path: /a\n      overwrite: true\n",
        &["line 6 column 7: storage.files.0.overwrite: overwrite must be false when contents has no source"],
    ),
    (
        "filesystem path without a format",
        "storage:\n  filesystems:\n    - device: /dev/sda1\n      path: /x\n",
        &["line 5 column 5: storage.filesystems.0.format: format is required when path, label, uuid, wipe_filesystem, options or mount_options is set"],
    ),
    (
        "file below a link",
        "storage:\n  links:\n    - path: /etc/a\n      target: /x\n  files:\n    - path: /etc/a/b\n",
        &[r#"line 8 column 7: storage.files.0.path: "/etc/a/b" is below the link "/etc/a""#],
    ),
    (
        "enabled unit without an install section (strict)",
        "systemd:\n  units:\n    - name: a.service\n      enabled: true\n      contents: |\n        [Service]\n        ExecStart=/bin/true\n",
        &["line 6 column 7: systemd.units.0.enabled: the unit is enabled but has no [Install] section, so enabling it does nothing"],
    ),
    (
        "invalid yaml",
        "storage:\n  files: [\n    - path: /a\n",
        &["line 5 column 5: invalid YAML: did not find expected node content"],
    ),
];

/// Configs that pass every structural check but that Ignition's own
/// validation rejects: (name, YAML after the header, expected diagnostics,
/// the equivalent Ignition JSON, which the real `ignition-validate` must
/// reject too).
const IGNITION_RULES: &[(&str, &str, &[&str], &str)] = &[
    (
        "paths not fully simplified",
        "storage:\n  files:\n    - path: /etc/../etc/hosts\n  directories:\n    - path: /var/lib/x/\n  links:\n    - path: //l\n      target: /b\n",
        &[
            r#"line 5 column 7: storage.files.0.path: path "/etc/../etc/hosts" is not fully simplified (write "/etc/hosts")"#,
            r#"line 7 column 7: storage.directories.0.path: path "/var/lib/x/" is not fully simplified (write "/var/lib/x")"#,
            r#"line 9 column 7: storage.links.0.path: path "//l" is not fully simplified (write "/l")"#,
        ],
        r#"{"ignition":{"version":"3.3.0"},"storage":{"files":[{"path":"/etc/../etc/hosts"}],"directories":[{"path":"/var/lib/x/"}],"links":[{"path":"//l","target":"/b"}]}}"#,
    ),
    (
        "unit contents that are not a unit file",
        "systemd:\n  units:\n    - name: a.service\n      contents: |\n        [Service]\n        ExecStart /bin/true\n",
        &[r#"line 6 column 7: systemd.units.0.contents: invalid unit contents: line 2: "ExecStart /bin/true" is neither a section header, a comment nor a key=value setting"#],
        r#"{"ignition":{"version":"3.3.0"},"systemd":{"units":[{"name":"a.service","contents":"[Service]\nExecStart /bin/true\n"}]}}"#,
    ),
    (
        "dropin contents that are not a unit file",
        "systemd:\n  units:\n    - name: a.service\n      dropins:\n        - name: x.conf\n          contents: \"[Service\\nA=b\\n\"\n",
        &[r#"line 8 column 11: systemd.units.0.dropins.0.contents: invalid dropin contents: line 1: section header without a closing "]""#],
        r#"{"ignition":{"version":"3.3.0"},"systemd":{"units":[{"name":"a.service","dropins":[{"name":"x.conf","contents":"[Service\nA=b\n"}]}]}}"#,
    ),
    (
        "filesystem labels too long",
        "storage:\n  filesystems:\n    - device: /dev/sdb1\n      format: ext4\n      label: seventeen-chars-x\n    - device: /dev/sdc1\n      format: vfat\n      label: TWELVE-CHARS\n    - device: /dev/sdd1\n      format: xfs\n      label: thirteen-char\n",
        &[
            r#"line 7 column 7: storage.filesystems.0.label: filesystem label "seventeen-chars-x" is 17 characters long; ext4 allows at most 16"#,
            r#"line 10 column 7: storage.filesystems.1.label: filesystem label "TWELVE-CHARS" is 12 characters long; vfat allows at most 11"#,
            r#"line 13 column 7: storage.filesystems.2.label: filesystem label "thirteen-char" is 13 characters long; xfs allows at most 12"#,
        ],
        r#"{"ignition":{"version":"3.3.0"},"storage":{"filesystems":[{"device":"/dev/sdb1","format":"ext4","label":"seventeen-chars-x"},{"device":"/dev/sdc1","format":"vfat","label":"TWELVE-CHARS"},{"device":"/dev/sdd1","format":"xfs","label":"thirteen-char"}]}}"#,
    ),
    (
        "a kernel argument both to exist and not to exist",
        "kernel_arguments:\n  should_exist:\n    - quiet\n  should_not_exist:\n    - quiet\n",
        &[r#"line 7 column 5: kernel_arguments.should_not_exist.0: duplicate kernel argument (in should_exist or should_not_exist) "quiet""#],
        r#"{"ignition":{"version":"3.3.0"},"kernelArguments":{"shouldExist":["quiet"],"shouldNotExist":["quiet"]}}"#,
    ),
    (
        "a proxy that is not http(s)",
        "ignition:\n  proxy:\n    http_proxy: socks5://proxy:1080\n",
        &[r#"line 5 column 5: ignition.proxy.http_proxy: proxy URL "socks5://proxy:1080" must be http or https"#],
        r#"{"ignition":{"version":"3.3.0","proxy":{"httpProxy":"socks5://proxy:1080"}}}"#,
    ),
    (
        "a partition with neither number nor label",
        "storage:\n  disks:\n    - device: /dev/sda\n      partitions:\n        - size_mib: 100\n",
        &["line 7 column 9: storage.disks.0.partitions.0: a partition needs a number (1 or more) or a label"],
        r#"{"ignition":{"version":"3.3.0"},"storage":{"disks":[{"device":"/dev/sda","partitions":[{"sizeMiB":100}]}]}}"#,
    ),
    (
        "a data URL source that does not decode",
        "storage:\n  files:\n    - path: /a\n      contents:\n        source: data:,50%\n",
        &["line 7 column 9: storage.files.0.contents.source: invalid data URL: truncated percent escape"],
        r#"{"ignition":{"version":"3.3.0"},"storage":{"files":[{"path":"/a","contents":{"source":"data:,50%"}}]}}"#,
    ),
    (
        "a duplicate SSH key",
        "passwd:\n  users:\n    - name: core\n      ssh_authorized_keys:\n        - ssh-ed25519 AAAA k\n        - ssh-ed25519 AAAA k\n",
        &[r#"line 8 column 9: passwd.users.0.ssh_authorized_keys.1: duplicate SSH key "ssh-ed25519 AAAA k""#],
        r#"{"ignition":{"version":"3.3.0"},"passwd":{"users":[{"name":"core","sshAuthorizedKeys":["ssh-ed25519 AAAA k","ssh-ed25519 AAAA k"]}]}}"#,
    ),
    (
        "a hard link to a directory",
        "storage:\n  directories:\n    - path: /d\n  links:\n    - path: /l\n      target: /d\n      hard: true\n",
        &[r#"line 7 column 5: storage.links.0: hard link target "/d" is a directory"#],
        r#"{"ignition":{"version":"3.3.0"},"storage":{"directories":[{"path":"/d"}],"links":[{"path":"/l","target":"/d","hard":true}]}}"#,
    ),
    (
        "an empty HTTP header value",
        "storage:\n  files:\n    - path: /a\n      contents:\n        source: https://h/a\n        http_headers:\n          - name: A\n            value: \"\"\n",
        &["line 10 column 13: storage.files.0.contents.http_headers.0.value: header value must not be empty (leave it out instead)"],
        r#"{"ignition":{"version":"3.3.0"},"storage":{"files":[{"path":"/a","contents":{"source":"https://h/a","httpHeaders":[{"name":"A","value":""}]}}]}}"#,
    ),
    (
        "URLs Go's parser refuses (found by fuzz/ignition-differential.sh)",
        "ignition:\n  config:\n    merge:\n      - source: http://10.0.0.v1:a\nstorage:\n  files:\n    - path: /a\n      contents:\n        source: http://boot server/a\n    - path: /b\n      contents:\n        source: http://%41/b\n",
        &[
            r#"line 6 column 9: ignition.config.merge.0.source: unable to parse URL "http://10.0.0.v1:a": invalid port ":a" after host"#,
            r#"line 11 column 9: storage.files.0.contents.source: unable to parse URL "http://boot server/a": invalid character ' ' in host name"#,
            r#"line 14 column 9: storage.files.1.contents.source: unable to parse URL "http://%41/b": invalid URL escape "%41""#,
        ],
        r#"{"ignition":{"config":{"merge":[{"source":"http://10.0.0.v1:a"}]},"version":"3.3.0"},"storage":{"files":[{"path":"/a","contents":{"source":"http://boot server/a"}},{"path":"/b","contents":{"source":"http://%41/b"}}]}}"#,
    ),
];

#[test]
fn ignition_validation_errors_report_location_and_close_real_gaps() {
    for (name, body, want, json) in IGNITION_RULES {
        let got = diagnostics(&format!("{HEAD}{body}"), &opts(None, false));
        assert_eq!(got, *want, "case: {name}");
        ignition_rejects(json);
    }
}

/// pxebuild's verdict on a resource URL is Ignition's, URL by URL: the rules
/// follow Go's URL parser (`butane/go_url.rs`), which Ignition runs on every
/// source; `fuzz/ignition-differential.sh` found where they used to differ.
#[test]
fn url_verdicts_agree_with_ignition_validate() {
    let urls = [
        "http://10.0.0.1:8080/ignition/cp1.ign",
        "https://user:p%40ss@example.com/a%20b?x=%zz",
        "http://[fe80::1%25eth0]:80/x",
        "http://h:/",
        "http://h/a#frag",
        "http://h/#a\u{1}b",
        "http://h/a\u{1}b",
        "http://%C3%A9.example/",
        "http:opaque%zz",
        "tftp://10.0.0.1/x",
        "s3://bucket/key?versionId=1",
        "s3://bucket/key?versionId=1&versionId=",
        "s3://bucket/key?versionId=;x",
        "s3://bucket/key?versionId=",
        "s3://bucket/key?version%49d=",
        "http://10.0.0.v1:a",
        "http://boot server/a",
        "http://h/%zz",
        "http://h/a%2",
        "http://h/#%zz",
        "http://%41/",
        "http://[::1/",
        "http://[::1]x/",
        "http://us er@h/",
        "http://u%zz@h/",
        "http://[fe80::1%25%C3]/",
        "ftp://h/x",
        ":foo",
        "data:,a%20b",
        "data:,a b",
        "data:,a#b",
        "data:,a%zz",
        "data:;base64,YQ==",
        "data:;base64,YQ",
        "data:text/plain;charset=utf-8,x",
        "data:text/plain;charset=\"utf-8\",x",
    ];
    for url in urls {
        let config = serde_json::json!({
            "ignition": {"version": "3.3.0"},
            "storage": {"files": [{"path": "/a", "contents": {"source": url}}]},
        });
        let ours = pxebuild::butane::verify::check(&config)
            .iter()
            .all(|finding| finding.warning);
        assert_eq!(
            ours,
            run_ignition_validate(&config.to_string()).status.success(),
            "pxebuild {} {url}",
            if ours { "accepts" } else { "refuses" }
        );
    }
}

#[test]
fn ignition_warnings_are_warnings_and_errors_when_strict() {
    let yaml = format!("{HEAD}storage:\n  files:\n    - path: /usr/bin/x\n      mode: 04755\n");
    let want = "line 6 column 7: storage.files.0.mode: mode 0o4755 has setuid/setgid/sticky bits, which Ignition before spec 3.6.0 does not apply";
    let tr = translate(&yaml, &opts(None, false)).unwrap();
    let warnings: Vec<String> = tr.warnings.iter().map(ToString::to_string).collect();
    assert_eq!(warnings, [want]);
    // ignition-validate itself only warns about it, and accepts the config.
    ignition_validate(&tr.json);
    assert_eq!(diagnostics(&yaml, &opts(None, true)), [want]);
}

#[test]
fn findings_inside_a_tree_point_at_the_tree_and_name_the_output_path() {
    let tmp = tempfile::tempdir().unwrap();
    std::fs::create_dir_all(tmp.path().join("tree")).unwrap();
    std::fs::write(tmp.path().join("tree/conf"), "x").unwrap();
    let yaml = format!("{HEAD}storage:\n  trees:\n    - local: tree\n      path: /etc/../opt\n");
    assert_eq!(
        diagnostics(&yaml, &opts(Some(tmp.path()), false)),
        [
            r#"line 5 column 5: storage.trees.0: path "/etc/../opt/conf" is not fully simplified (write "/opt/conf") (at storage.files.0.path in the generated Ignition config)"#
        ]
    );
}

#[test]
fn yaml_1_1_booleans_are_accepted_for_boolean_keys() {
    let yaml = format!(
        "{HEAD}storage:\n  files:\n    - path: /a\n      overwrite: yes\n      contents:\n        source: https://h/a\nsystemd:\n  units:\n    - name: a.service\n      enabled: off\n      mask: ON\n"
    );
    let tr = translate(&yaml, &opts(None, true)).unwrap();
    assert_eq!(
        tr.json,
        r#"{"ignition":{"version":"3.3.0"},"storage":{"files":[{"contents":{"source":"https://h/a"},"overwrite":true,"path":"/a"}]},"systemd":{"units":[{"enabled":false,"mask":true,"name":"a.service"}]}}"#
    );
    ignition_validate(&tr.json);
}

#[test]
fn plain_numbers_and_booleans_are_their_text_where_a_string_is_expected() {
    let yaml = format!(
        "{HEAD}storage:\n  files:\n    - path: /version\n      contents:\n        inline: 1.50\n    - path: /flag\n      contents:\n        inline: True # as written\n"
    );
    let tr = translate(&yaml, &opts(None, true)).unwrap();
    assert_eq!(
        tr.json,
        r#"{"ignition":{"version":"3.3.0"},"storage":{"files":[{"contents":{"compression":"","source":"data:,1.50"},"path":"/version"},{"contents":{"compression":"","source":"data:,True"},"path":"/flag"}]}}"#
    );
    ignition_validate(&tr.json);
}

#[test]
fn a_user_unit_named_like_a_generated_mount_unit_is_merged_into_it() {
    let yaml = format!(
        "{HEAD}storage:\n  filesystems:\n    - device: /dev/sdb1\n      format: xfs\n      path: /srv\n      with_mount_unit: true\nsystemd:\n  units:\n    - name: a.service\n    - name: srv.mount\n      dropins:\n        - name: after.conf\n          contents: \"[Unit]\\nAfter=a.service\\n\"\n"
    );
    let tr = translate(&yaml, &opts(None, true)).unwrap();
    let v: serde_json::Value = serde_json::from_str(&tr.json).unwrap();
    let units = v["systemd"]["units"].as_array().unwrap();
    let names: Vec<&str> = units.iter().map(|u| u["name"].as_str().unwrap()).collect();
    // As in Butane: generated units first, the user's same-named unit merged in.
    assert_eq!(names, ["srv.mount", "a.service"]);
    assert_eq!(units[0]["enabled"], true);
    assert!(units[0]["contents"]
        .as_str()
        .unwrap()
        .contains("Where=/srv\n"));
    assert_eq!(units[0]["dropins"][0]["name"], "after.conf");
    ignition_validate(&tr.json);
}

fn diagnostics(yaml: &str, o: &Options) -> Vec<String> {
    match translate(yaml, o) {
        Ok(tr) => panic!("expected errors, got {}", tr.json),
        Err(diags) => diags.iter().map(ToString::to_string).collect(),
    }
}

#[test]
fn every_error_case_reports_message_path_and_location() {
    for (name, body, want) in ERRORS {
        let got = diagnostics(&format!("{HEAD}{body}"), &opts(None, true));
        assert_eq!(got, *want, "case: {name}");
    }
}

#[test]
fn variant_and_version_are_checked_first() {
    let o = opts(None, false);
    assert_eq!(
        diagnostics("variant: fcos\nversion: 1.4.0\n", &o),
        [
            r#"line 1 column 1: variant: unsupported variant "fcos": pxebuild translates only variant flatcar"#
        ]
    );
    assert_eq!(
        diagnostics("variant: flatcar\nversion: 2.0.0\n", &o),
        [
            r#"line 2 column 1: version: unsupported version "2.0.0" of variant flatcar (supported: 1.0.0, 1.1.0)"#
        ]
    );
    assert_eq!(
        diagnostics("", &o),
        ["the config is empty: expected variant and version"]
    );
    assert_eq!(
        diagnostics("variant: flatcar\n", &o),
        [r#"version: missing required key "version""#]
    );
}

#[test]
fn local_paths_may_not_escape_the_files_directory() {
    let tmp = tempfile::tempdir().unwrap();
    let files = tmp.path().join("files");
    std::fs::create_dir(&files).unwrap();
    std::fs::write(tmp.path().join("secret"), "s").unwrap();
    std::os::unix::fs::symlink("../secret", files.join("sneaky")).unwrap();
    let o = opts(Some(&files), false);
    let yaml = |local: &str| {
        format!(
            "{HEAD}storage:\n  files:\n    - path: /a\n      contents:\n        local: {local}\n"
        )
    };
    assert_eq!(
        diagnostics(&yaml("../secret"), &o),
        [
            r#"line 7 column 9: storage.files.0.contents.local: local path "../secret" escapes the files directory"#
        ]
    );
    assert_eq!(
        diagnostics(&yaml("sneaky"), &o),
        [
            r#"line 7 column 9: storage.files.0.contents.local: local path "sneaky" leaves the files directory through a symlink"#
        ]
    );
}

#[test]
fn decimal_mode_is_a_warning_and_an_error_when_strict() {
    let yaml = format!("{HEAD}storage:\n  files:\n    - path: /a\n      mode: 644\n");
    let want =
        "line 6 column 7: storage.files.0.mode: mode 644 is decimal (0o1204); did you mean 0644?";
    // 0o1204 has the sticky bit, which Ignition's validation warns about too.
    let sticky = "line 6 column 7: storage.files.0.mode: mode 0o1204 has setuid/setgid/sticky bits, which Ignition before spec 3.6.0 does not apply";
    let tr = translate(&yaml, &opts(None, false)).unwrap();
    let warnings: Vec<String> = tr.warnings.iter().map(ToString::to_string).collect();
    assert_eq!(warnings, [want, sticky]);
    assert_eq!(
        tr.json,
        r#"{"ignition":{"version":"3.3.0"},"storage":{"files":[{"mode":644,"path":"/a"}]}}"#
    );
    ignition_validate(&tr.json);
    assert_eq!(diagnostics(&yaml, &opts(None, true)), [want, sticky]);
}

#[test]
fn trees_embed_files_with_modes_and_symlinks_as_links() {
    let tmp = tempfile::tempdir().unwrap();
    let tree = tmp.path().join("tree");
    std::fs::create_dir_all(tree.join("bin")).unwrap();
    std::fs::create_dir_all(tree.join("etc/app")).unwrap();
    std::fs::write(tree.join("bin/tool"), "#!/bin/sh\necho hi\n").unwrap();
    std::fs::set_permissions(
        tree.join("bin/tool"),
        std::fs::Permissions::from_mode(0o750),
    )
    .unwrap();
    std::fs::write(tree.join("etc/app/conf"), "a=1\n").unwrap();
    std::fs::set_permissions(
        tree.join("etc/app/conf"),
        std::fs::Permissions::from_mode(0o600),
    )
    .unwrap();
    std::os::unix::fs::symlink("app/conf", tree.join("etc/current")).unwrap();
    let yaml = format!(
        "{HEAD}storage:\n  trees:\n    - local: tree\n      path: /opt/x\n    - local: tree/etc\n"
    );
    let tr = translate(&yaml, &opts(Some(tmp.path()), true)).unwrap();
    let want = concat!(
        r#"{"ignition":{"version":"3.3.0"},"storage":{"files":["#,
        r#"{"contents":{"compression":"","source":"data:,%23!%2Fbin%2Fsh%0Aecho%20hi%0A"},"mode":493,"path":"/opt/x/bin/tool"},"#,
        r#"{"contents":{"compression":"","source":"data:,a%3D1%0A"},"mode":420,"path":"/opt/x/etc/app/conf"},"#,
        r#"{"contents":{"compression":"","source":"data:,a%3D1%0A"},"mode":420,"path":"/app/conf"}],"#,
        r#""links":[{"path":"/opt/x/etc/current","target":"app/conf"},{"path":"/current","target":"app/conf"}]}}"#
    );
    assert_eq!(tr.json, want);
    ignition_validate(&tr.json);

    // A tree file colliding with an explicit file that has contents is a
    // duplicate path.
    let clash = format!(
        "{HEAD}storage:\n  files:\n    - path: /app/conf\n      contents:\n        inline: x\n  trees:\n    - local: tree/etc\n"
    );
    assert_eq!(
        diagnostics(&clash, &opts(Some(tmp.path()), false)),
        [
            r#"line 9 column 5: storage.trees.0: duplicate path "/app/conf" (first defined at storage.files.0.path)"#
        ]
    );
    // Without contents, as in Butane, the tree fills the explicit entry,
    // which keeps its own mode and owner.
    let fill = format!(
        "{HEAD}storage:\n  files:\n    - path: /app/conf\n      mode: 0640\n      user:\n        name: core\n  trees:\n    - local: tree/etc\n"
    );
    let tr = translate(&fill, &opts(Some(tmp.path()), true)).unwrap();
    assert_eq!(
        tr.json,
        concat!(
            r#"{"ignition":{"version":"3.3.0"},"storage":{"files":["#,
            r#"{"contents":{"compression":"","source":"data:,a%3D1%0A"},"mode":416,"path":"/app/conf","user":{"name":"core"}}],"#,
            r#""links":[{"path":"/current","target":"app/conf"}]}}"#
        )
    );
    ignition_validate(&tr.json);
}

#[test]
fn output_is_deterministic() {
    let yaml = std::fs::read_to_string(fixtures().join("cases/files.bu")).unwrap();
    let o = opts(Some(&fixtures().join("files")), false);
    assert_eq!(
        translate(&yaml, &o).unwrap().json,
        translate(&yaml, &o).unwrap().json
    );
}

proptest::proptest! {
    #![proptest_config(proptest::prelude::ProptestConfig::with_cases(64))]
    /// Local contents of any bytes come back exactly from the emitted data URL.
    #[test]
    fn local_contents_round_trip(
        data in proptest::collection::vec(proptest::prelude::any::<u8>(), 0..1024),
        repeat in 1usize..6,
    ) {
        let data: Vec<u8> = data.iter().copied().cycle().take(data.len() * repeat).collect();
        let tmp = tempfile::tempdir().unwrap();
        std::fs::write(tmp.path().join("blob"), &data).unwrap();
        let yaml = format!("{HEAD}storage:\n  files:\n    - path: /blob\n      contents:\n        local: blob\n");
        let tr = translate(&yaml, &opts(Some(tmp.path()), true)).unwrap();
        let v: serde_json::Value = serde_json::from_str(&tr.json).unwrap();
        let contents = &v["storage"]["files"][0]["contents"];
        let mut got = data_url::decode(contents["source"].as_str().unwrap()).unwrap();
        if contents["compression"] == "gzip" {
            got = data_url::gunzip(&got).unwrap();
        } else {
            // Written out even when empty, as Butane does.
            proptest::prop_assert_eq!(&contents["compression"], "");
        }
        proptest::prop_assert_eq!(got, data);
        ignition_validate(&tr.json);
    }

    /// Random sets of local files, inline texts and a tree of nested random
    /// files: every emitted data URL decodes to exactly the input bytes, and
    /// the real `ignition-validate` accepts the config.
    #[test]
    fn file_sets_and_trees_round_trip_and_validate(
        locals in proptest::collection::vec(blob(), 0..4),
        inlines in proptest::collection::vec("\\PC{0,120}", 0..3),
        tree in proptest::collection::vec((0u8..3, 0u8..3, blob()), 1..8),
    ) {
        let tmp = tempfile::tempdir().unwrap();
        let mut want = std::collections::BTreeMap::new();
        let mut yaml = format!("{HEAD}storage:\n  files:\n    - path: /placeholder\n");
        for (i, data) in locals.iter().enumerate() {
            std::fs::write(tmp.path().join(format!("l{i}")), data).unwrap();
            yaml += &format!("    - path: /local/{i}\n      contents:\n        local: l{i}\n");
            want.insert(format!("/local/{i}"), data.clone());
        }
        for (i, text) in inlines.iter().enumerate() {
            let quoted = serde_json::to_string(text).unwrap();
            yaml += &format!("    - path: /inline/{i}\n      contents:\n        inline: {quoted}\n");
            want.insert(format!("/inline/{i}"), text.as_bytes().to_vec());
        }
        for (i, (depth, dir, data)) in tree.iter().enumerate() {
            let rel = match depth {
                0 => format!("f{i}"),
                1 => format!("d{dir}/f{i}"),
                _ => format!("d{dir}/e{dir}/f{i}"),
            };
            let file = tmp.path().join("tree").join(&rel);
            std::fs::create_dir_all(file.parent().unwrap()).unwrap();
            std::fs::write(&file, data).unwrap();
            want.insert(format!("/opt/tree/{rel}"), data.clone());
        }
        yaml += "  trees:\n    - local: tree\n      path: /opt/tree/\n";
        let tr = translate(&yaml, &opts(Some(tmp.path()), true))
            .unwrap_or_else(|e| panic!("{yaml}\n{e:?}"));
        let v: serde_json::Value = serde_json::from_str(&tr.json).unwrap();
        let mut got = std::collections::BTreeMap::new();
        for f in v["storage"]["files"].as_array().unwrap().iter().skip(1) {
            let contents = &f["contents"];
            let mut bytes = data_url::decode(contents["source"].as_str().unwrap()).unwrap();
            if contents["compression"] == "gzip" {
                bytes = data_url::gunzip(&bytes).unwrap();
            } else {
                proptest::prop_assert_eq!(&contents["compression"], "");
            }
            got.insert(f["path"].as_str().unwrap().to_string(), bytes);
        }
        proptest::prop_assert_eq!(got, want);
        ignition_validate(&tr.json);
    }
}

/// Random bytes, sometimes repeated so that gzip wins.
fn blob() -> impl proptest::strategy::Strategy<Value = Vec<u8>> {
    use proptest::strategy::Strategy;
    (
        proptest::collection::vec(proptest::prelude::any::<u8>(), 0..300),
        1usize..6,
    )
        .prop_map(|(data, repeat)| {
            data.iter()
                .copied()
                .cycle()
                .take(data.len() * repeat)
                .collect()
        })
}

// ---- the real binary -------------------------------------------------------

fn pxebuild(args: &[&str], stdin: Option<&str>) -> std::process::Output {
    let mut child = Command::new(env!("CARGO_BIN_EXE_pxebuild"))
        .arg("butane")
        .args(args)
        .stdin(Stdio::piped())
        .stdout(Stdio::piped())
        .stderr(Stdio::piped())
        .spawn()
        .expect("starting pxebuild");
    let mut input = child.stdin.take().unwrap();
    input.write_all(stdin.unwrap_or("").as_bytes()).unwrap();
    drop(input);
    child.wait_with_output().unwrap()
}

const SMALL: &str = "variant: flatcar\nversion: 1.0.0\nstorage:\n  files:\n    - path: /etc/hostname\n      mode: 0644\n      contents:\n        inline: n1\n";
const SMALL_JSON: &str = r#"{"ignition":{"version":"3.3.0"},"storage":{"files":[{"contents":{"compression":"","source":"data:,n1"},"mode":420,"path":"/etc/hostname"}]}}"#;

#[test]
fn cli_translates_stdin_to_stdout() {
    let out = pxebuild(&[], Some(SMALL));
    assert!(
        out.status.success(),
        "{}",
        String::from_utf8_lossy(&out.stderr)
    );
    assert_eq!(
        String::from_utf8(out.stdout).unwrap(),
        format!("{SMALL_JSON}\n")
    );
}

#[test]
fn cli_translates_a_file_to_an_output_file_and_pretty_prints() {
    let tmp = tempfile::tempdir().unwrap();
    let input = tmp.path().join("node.bu");
    let output = tmp.path().join("node.ign");
    std::fs::write(&input, SMALL).unwrap();
    let out = pxebuild(
        &[input.to_str().unwrap(), "-o", output.to_str().unwrap()],
        None,
    );
    assert!(
        out.status.success(),
        "{}",
        String::from_utf8_lossy(&out.stderr)
    );
    assert!(out.stdout.is_empty());
    assert_eq!(
        std::fs::read_to_string(&output).unwrap(),
        format!("{SMALL_JSON}\n")
    );
    ignition_validate(SMALL_JSON);

    let pretty = pxebuild(&["--pretty", input.to_str().unwrap()], None);
    let text = String::from_utf8(pretty.stdout).unwrap();
    assert!(text.starts_with("{\n  \"ignition\": {\n"), "{text}");
    let reparsed: serde_json::Value = serde_json::from_str(&text).unwrap();
    assert_eq!(
        reparsed,
        serde_json::from_str::<serde_json::Value>(SMALL_JSON).unwrap()
    );
}

#[test]
fn cli_uses_files_dir_for_local_contents() {
    let files = fixtures().join("files");
    let yaml = std::fs::read_to_string(fixtures().join("cases/v1_1.bu")).unwrap();
    let out = pxebuild(&["--files-dir", files.to_str().unwrap()], Some(&yaml));
    assert!(
        out.status.success(),
        "{}",
        String::from_utf8_lossy(&out.stderr)
    );
    let want = std::fs::read_to_string(fixtures().join("cases/v1_1.ign")).unwrap();
    assert_eq!(String::from_utf8(out.stdout).unwrap(), want);
}

#[test]
fn cli_reports_errors_one_per_line_in_line_order_and_exits_2() {
    let tmp = tempfile::tempdir().unwrap();
    let input = tmp.path().join("bad.bu");
    std::fs::write(
        &input,
        format!("{HEAD}storage:\n  files:\n    - path: a\n      bogus: 1\n"),
    )
    .unwrap();
    let out = pxebuild(&[input.to_str().unwrap()], None);
    assert_eq!(out.status.code(), Some(2));
    assert!(out.stdout.is_empty());
    let name = input.display();
    let stderr = String::from_utf8(out.stderr).unwrap();
    assert_eq!(
        stderr,
        format!(
            "{name}:5:7: error: storage.files.0.path: path must be absolute, got \"a\"\n\
             {name}:6:7: error: storage.files.0.bogus: unknown key \"bogus\"\n\
             error: {name}: 2 error(s) in the Butane config\n"
        )
    );
}

#[test]
fn cli_prints_warnings_and_strict_turns_them_into_errors() {
    let yaml = format!("{HEAD}storage:\n  directories:\n    - path: /d\n      mode: 755\n");
    let out = pxebuild(&[], Some(&yaml));
    assert!(out.status.success());
    assert_eq!(
        String::from_utf8(out.stderr).unwrap(),
        "<stdin>:6:7: warning: storage.directories.0.mode: mode 755 is decimal (0o1363); did you mean 0755?\n\
         <stdin>:6:7: warning: storage.directories.0.mode: mode 0o1363 has setuid/setgid/sticky bits, which Ignition before spec 3.6.0 does not apply\n"
    );
    let strict = pxebuild(&["--strict"], Some(&yaml));
    assert_eq!(strict.status.code(), Some(2));
    assert!(String::from_utf8(strict.stderr)
        .unwrap()
        .starts_with("<stdin>:6:7: error: storage.directories.0.mode:"));
}

/// A literal Butane file (no template): a YAML syntax error and an unknown
/// key are reported at the line they are on, 1-based, also where the parser
/// only notices the fault a line later.
#[test]
fn cli_reports_yaml_errors_and_unknown_keys_at_their_line() {
    let tmp = tempfile::tempdir().unwrap();
    let cases = [
        (
            "storage:\n  directories\n    - path: /a\n",
            "4:3: error: invalid YAML: mapping values are not allowed in this context (a ':' \
             missing at the end of this line? Without it YAML reads the next line as more of \
             this line's text)",
        ),
        (
            "storage:\n  files:\n    - path: /a\n   bad: 1\n",
            "6:4: error: invalid YAML: did not find expected key",
        ),
        (
            "storage:\n  files:\n    - path: \"/a\n",
            "5:13: error: invalid YAML: found unexpected end of stream, while scanning a quoted \
             scalar that starts here",
        ),
        (
            "storage:\n  files:\n    - path: /a\n  filez: []\n",
            "6:3: error: storage.filez: unknown key \"filez\"",
        ),
        (
            "storagex:\n  files: []\n",
            "3:1: error: storagex: unknown key \"storagex\"",
        ),
    ];
    for (body, want) in cases {
        let input = tmp.path().join("node.bu");
        std::fs::write(&input, format!("{HEAD}{body}")).unwrap();
        let out = pxebuild(&[input.to_str().unwrap()], None);
        let stderr = String::from_utf8(out.stderr).unwrap();
        assert_eq!(out.status.code(), Some(2), "{stderr}");
        let name = input.display();
        assert_eq!(
            stderr,
            format!("{name}:{want}\nerror: {name}: 1 error(s) in the Butane config\n"),
            "{body:?}"
        );
    }
}

#[test]
fn cli_missing_input_file_is_bad_input() {
    let out = pxebuild(&["/nonexistent/x.bu"], None);
    assert_eq!(out.status.code(), Some(2));
    assert!(String::from_utf8_lossy(&out.stderr).contains("reading /nonexistent/x.bu"));
}

// ---- Butane rendered from the site's templates ----------------------------

/// `pxebuild build` of the example site against the fixture mirror, with
/// `templates/node.bu.hbs` line `line` replaced by `text`: the build fails
/// as bad input; returns its stderr.
fn build_with_node_template_line(line: usize, from: &str, text: &str) -> (String, String) {
    let (dir, mirror) = crate::cluster_build::prepared();
    let hbs = dir.path().join("templates/node.bu.hbs");
    let template = std::fs::read_to_string(&hbs).unwrap();
    let mut lines: Vec<&str> = template.lines().collect();
    assert_eq!(lines[line - 1], from, "templates/node.bu.hbs line {line}");
    lines[line - 1] = text;
    std::fs::write(&hbs, format!("{}\n", lines.join("\n"))).unwrap();
    let out = crate::cluster_build::build(dir.path(), &dir.path().join("dist"), &mirror);
    let stderr = String::from_utf8_lossy(&out.stderr).into_owned();
    assert_eq!(out.status.code(), Some(2), "{stderr}");
    assert!(
        !dir.path().join("dist").exists(),
        "no dist/ from a failed build"
    );
    // Messages name the templates where the site has them (like template errors).
    (stderr, dir.path().join("templates").display().to_string())
}

#[test]
fn a_butane_error_in_a_node_template_names_the_template_line_and_the_node() {
    // cp1 is the first node step the build starts; the first failure stops
    // new work, so which other nodes report varies with the job count.
    let cases = [
        (
            25,
            "      mode: 0o644",
            "      mode: \"rw\"",
            "templates/node.bu.hbs:25:7: storage.files.0.mode: expected an integer, found the \
             quoted string \"rw\" (a mode is an octal number such as 0644)\n    \
             rendered for cp1 as line 21 column 7: `      mode: \"rw\"`",
        ),
        (
            12,
            "storage:",
            "storagex:",
            "templates/node.bu.hbs:12:1: storagex: unknown key \"storagex\"\n    \
             rendered for cp1 as line 10 column 1: `storagex:`",
        ),
        (
            13,
            "  directories:",
            "  directories",
            "templates/node.bu.hbs:13:3: invalid YAML: mapping values are not allowed in this \
             context (a ':' missing at the end of this line? Without it YAML reads the next \
             line as more of this line's text)\n    \
             rendered for cp1 as line 11 column 3: `  directories`",
        ),
    ];
    for (line, from, to, want) in cases {
        let (stderr, templates) = build_with_node_template_line(line, from, to);
        let head = format!(
            "ignition:cp1/node.ign failed: {templates}/node.bu.hbs rendered for node cp1 \
             is not valid Butane:\n  {templates}/"
        );
        let want = want.strip_prefix("templates/").unwrap();
        assert!(
            stderr.contains(&format!("{head}{want}\n")),
            "line {line} {to:?}:\n{stderr}"
        );
        assert!(!stderr.contains("cp1/node.bu"), "{stderr}");
    }
}

/// Rendered for every node (control planes and workers render different
/// lines), a broken line in a partial names the partial's line and the line
/// that includes it, and a warning made an error by strictness its own line.
#[test]
fn rendered_template_errors_name_the_partial_and_every_node() {
    use pxebuild::render::ignition::{translate_rendered, Rendered, Sources};
    use pxebuild::render::templates::Templates;

    let (dir, _) = crate::cluster_common::example_site();
    let edit = |rel: &str, line: usize, from: &str, to: &str| {
        let path = dir.path().join("templates").join(rel);
        let text = std::fs::read_to_string(&path).unwrap();
        let mut lines: Vec<&str> = text.lines().collect();
        assert_eq!(lines[line - 1], from, "{rel} line {line}");
        lines[line - 1] = to;
        std::fs::write(&path, format!("{}\n", lines.join("\n"))).unwrap();
    };
    edit(
        "partials/kubernetes-files.hbs",
        2,
        "      mode: 0o600",
        "      mode: \"0600\"",
    );
    edit("node.bu.hbs", 35, "      mode: 0o755", "      mode: 755");
    let site = pxebuild::site::Site::load(&dir.path().join("site.toml")).unwrap();
    let templates_dir = site.templates_dir();
    let digest = Templates::load(&templates_dir)
        .unwrap()
        .digest()
        .to_string();
    let mut nodes = Vec::new();
    for (ctx, bu) in crate::cluster_render::render_all(&site) {
        let node = ctx.node.name.as_str();
        let from = Rendered {
            template: "node.bu",
            node,
            sources: Sources::Dir {
                dir: &templates_dir,
                digest: &digest,
            },
        };
        let err = translate_rendered(&bu, &from, true).unwrap_err();
        assert_eq!(pxebuild::error::exit_code(&err), 2);
        let text = format!("{err:#}");
        let rendered = |wanted: &str| 1 + bu.lines().position(|l| l == wanted).unwrap();
        let quoted = rendered("      mode: \"0600\"");
        let decimal = rendered("      mode: 755");
        let t = templates_dir.display();
        assert!(
            text.starts_with(&format!(
                "{t}/node.bu.hbs rendered for node {node} is not valid Butane:\n  \
                 {t}/partials/kubernetes-files.hbs:2:7 (included from \
                 {t}/node.bu.hbs:32): storage.files."
            )),
            "{text}"
        );
        assert!(
            text.contains(&format!(
                ".mode: expected an integer, found the quoted string \"0600\" (write the mode \
                 without quotes: 0600)\n    rendered for {node} as line {quoted} column 7: \
                 `      mode: \"0600\"`"
            )),
            "{text}"
        );
        assert!(
            text.contains(&format!(
                ".mode: mode 755 is decimal (0o1363); did you mean 0755?\n    \
                 rendered for {node} as line {decimal} column 7: `      mode: 755`"
            )),
            "{text}"
        );
        assert!(
            text.contains(&format!("\n  {t}/node.bu.hbs:35:7: storage.files.")),
            "{text}"
        );
        nodes.push((node.to_string(), quoted));
    }
    // The same template line is a different rendered line per role.
    let lines: std::collections::BTreeSet<usize> = nodes.iter().map(|n| n.1).collect();
    assert!(lines.len() > 1, "{nodes:?}");
}

/// Every line of the example site's node.bu and install.bu, rendered for
/// every node, maps back to the template line that wrote it. The truth comes
/// from rendering a copy of the templates with a marker at the end of every
/// line that is not a standalone block tag; the map sees the original
/// templates and the rendering without the markers.
#[test]
fn every_rendered_line_of_the_example_site_maps_to_its_template_line() {
    use pxebuild::render::node::render_install;
    use pxebuild::render::template_map::{LineMap, Origin, TemplateLine};
    use pxebuild::render::templates::Templates;

    let (dir, _) = crate::cluster_common::example_site();
    let templates_dir = dir.path().join("templates");
    let mut names = vec!["node.bu".to_string(), "install.bu".to_string()];
    for entry in std::fs::read_dir(templates_dir.join("partials")).unwrap() {
        let file = entry.unwrap().file_name().into_string().unwrap();
        names.push(format!("partials/{}", file.trim_end_matches(".hbs")));
    }
    let mut sources = Vec::new();
    for name in names {
        let path = templates_dir.join(format!("{name}.hbs"));
        let text = std::fs::read_to_string(&path).unwrap();
        std::fs::write(&path, with_markers(&name, &text)).unwrap();
        sources.push((name, text));
    }
    let site = pxebuild::site::Site::load(&dir.path().join("site.toml")).unwrap();
    let marked = Templates::load(&site.templates_dir()).unwrap();
    let mut checked = 0;
    for (mut ctx, node_bu) in crate::cluster_render::render_all(&site) {
        let install_bu = render_install(&marked, &mut ctx, b"{}").unwrap();
        for (template, text) in [("node.bu", node_bu), ("install.bu", install_bu)] {
            let (plain, truth) = strip_markers(&text);
            let map = LineMap::new(&sources, template, &plain);
            for (i, want) in truth.iter().enumerate() {
                let Some((name, line)) = want else { continue };
                let want = TemplateLine {
                    template: name.clone(),
                    line: *line,
                };
                match map.locate(i + 1, None) {
                    Origin::Line { chain, .. } if chain[0] == want => checked += 1,
                    other => panic!(
                        "{} {template} line {}: {:?}: want {want:?}, got {other:?}",
                        ctx.node.name,
                        i + 1,
                        plain.lines().nth(i)
                    ),
                }
            }
        }
    }
    assert!(checked > 1000, "{checked} lines checked");
}

/// The template with ` #@<name>:<line>@` after every line that is not blank
/// or a standalone `{{#…}}`, `{{/…}}`, `{{else}}`, `{{^…}}`, `{{>…}}` or
/// `{{!…}}` tag.
fn with_markers(name: &str, text: &str) -> String {
    let mut out = String::new();
    for (n, line) in text.lines().enumerate() {
        let t = line.trim();
        let standalone = t.starts_with("{{")
            && t.ends_with("}}")
            && t.matches("{{").count() == 1
            && (t[2..].starts_with(['#', '/', '^', '>', '!']) || t == "{{else}}");
        out.push_str(line);
        if !t.is_empty() && !standalone {
            out.push_str(&format!(" #@{name}:{}@", n + 1));
        }
        out.push('\n');
    }
    out
}

/// The rendering without markers, and per line the marker it ended with.
fn strip_markers(text: &str) -> (String, Vec<Option<(String, usize)>>) {
    let mut plain = String::new();
    let mut truth = Vec::new();
    for line in text.lines() {
        let mut rest = line;
        let mut kept = String::new();
        let mut last = None;
        while let Some(at) = rest.find(" #@") {
            let Some(end) = rest[at + 3..].find('@') else {
                break;
            };
            kept.push_str(&rest[..at]);
            last = Some((&rest[at + 3..at + 3 + end], at + 3 + end + 1 == rest.len()));
            rest = &rest[at + 3 + end + 1..];
        }
        kept.push_str(rest);
        truth.push(last.filter(|(_, at_end)| *at_end).map(|(m, _)| {
            let (name, line) = m.rsplit_once(':').unwrap();
            (name.to_string(), line.parse().unwrap())
        }));
        plain.push_str(&kept);
        plain.push('\n');
    }
    (plain, truth)
}
